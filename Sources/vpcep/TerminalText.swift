/// Text from the server made harmless at a terminal. Descriptions, names and messages come from
/// other tenants or were stored before the server refused control characters; printed raw, a
/// newline would forge a table row and an ESC or OSC sequence would drive the reader's terminal.
enum TerminalText {
    /// C0 controls, DEL, C1 controls and the Unicode line and paragraph separators.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
        default: false
        }
    }

    /// `text` with control characters written as `\n`, `\r`, `\t` or `\u{1b}`.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where isControl(scalar): result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
