/// Page texts of the Operations area, German and English.
enum OperationsStrings {
    static let all: [String: (de: String, en: String)] = [:]
}
