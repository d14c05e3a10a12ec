import Foundation

/// The opaque `page_token` of list calls: a `ListCursor` and a fingerprint of the query it belongs to
/// (the list, the caller's region and owner scope, every filter, the sort key and direction), as
/// unpadded base64url of a small JSON object. A token given with another query is refused rather than
/// read against rows it was not made for. Tokens are not secret and need no signature: a forged one
/// only moves the caller's position within rows its query may see anyway.
struct PageToken: Codable, Hashable {
    /// Format version.
    var v: Int
    /// The cursor: sort value (milliseconds) and id of the last row of the previous page.
    var s: Int64
    var i: String
    /// The query's fingerprint.
    var b: String

    static let version = 1

    /// A fingerprint of `parts`: 64-bit FNV-1a over them, each followed by a separator no part holds
    /// in this position (the parts are our own descriptions of values), as 16 hex digits.
    static func binding(_ parts: [String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in parts {
            for byte in part.utf8 + [0] {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func encode(_ cursor: ListCursor, binding: String) -> String {
        let token = PageToken(v: version, s: cursor.sortValue, i: cursor.id, b: binding)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding four plain fields cannot fail.
        let json = (try? encoder.encode(token)) ?? Data()
        return json.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The cursor of `text`, checked against the query's `binding`.
    static func decode(_ text: String, binding: String) throws(RegistryError) -> ListCursor {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard text.count <= 1024, let data = Data(base64Encoded: base64),
            let token = try? JSONDecoder().decode(PageToken.self, from: data), token.v == version, !token.i.isEmpty
        else {
            throw .invalid(
                .pageTokenInvalid, "page_token is not a token this server issued; start again without one",
                field: "page.page_token")
        }
        guard token.b == binding else {
            throw .invalid(
                .pageTokenMismatch,
                "page_token belongs to another query; repeat the filters, sort and region of the call that returned it",
                field: "page.page_token")
        }
        return ListCursor(sortValue: token.s, id: token.i)
    }
}

extension ListResult {
    /// The page with its `nextPageToken` set from the store's `next`, for `query`.
    func withPageToken(for query: ListQuery) -> ListResult {
        var result = self
        result.nextPageToken = next.map { PageToken.encode($0, binding: query.tokenBinding) } ?? ""
        return result
    }

    /// The same page and token, the items mapped.
    func map<U: Sendable>(_ transform: (T) throws -> U) rethrows -> ListResult<U> {
        ListResult<U>(items: try items.map(transform), totalCount: totalCount, next: next, nextPageToken: nextPageToken)
    }
}
