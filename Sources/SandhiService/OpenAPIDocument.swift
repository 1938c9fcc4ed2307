import Foundation
import Hummingbird
import NIOCore

/// `openapi.json` (in this folder; the API's contract, checked by schemathesis in the tests),
/// served as it is at `/openapi.json`.
enum OpenAPIDocument {
    static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
              let data = try? Data(contentsOf: url) else { return Array(#"{"error":"openapi.json is not installed beside sandhi"}"#.utf8) }
        return Array(data)
    }()

    static func response() -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
