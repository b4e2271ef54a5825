/// Page texts of the Admin area, German and English.
enum AdminStrings {
    static let all: [String: (de: String, en: String)] = [:]
}
