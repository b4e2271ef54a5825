/// Page texts of the Account area, German and English.
enum AccountStrings {
    static let all: [String: (de: String, en: String)] = [:]
}
