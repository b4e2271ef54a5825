/// Page texts of the Settings area, German and English.
enum SettingsStrings {
    static let all: [String: (de: String, en: String)] = [:]
}
