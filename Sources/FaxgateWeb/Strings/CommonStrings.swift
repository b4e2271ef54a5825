/// Page texts of the Common area, German and English.
enum CommonStrings {
    static let all: [String: (de: String, en: String)] = [:]
}
