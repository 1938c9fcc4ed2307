import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// JSON responses: keys sorted (stable output for clients and golden tests), a refusal always
/// `{"field": ..., "error": ...}` naming what was wrong.
enum ServiceResponse {
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding the service's own Codable types cannot fail: no floats, no custom encoders.
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func refusal(_ status: HTTPResponse.Status, field: String, _ error: String, headers: HTTPFields = [:]) -> Response {
        json(TransferAPI.Refusal(field: field, error: error), status: status, headers: headers)
    }
}

/// A request's JSON body, bounded by `SandhiServer.maxBodyBytes`: the value, or the response
/// that refuses it (413 for a body too large, 400 naming the field that does not decode).
enum RequestBody {
    enum Decoded<T> {
        case value(T)
        case refused(Response)
    }

    static func decode<T: Decodable>(_ request: Request, as type: T.Type) async -> Decoded<T> {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: SandhiServer.maxBodyBytes)
        } catch {
            return .refused(ServiceResponse.refusal(.contentTooLarge, field: "body", "larger than \(SandhiServer.maxBodyBytes) bytes"))
        }
        do {
            return .value(try JSONDecoder().decode(type, from: Data(buffer: body)))
        } catch {
            return .refused(ServiceResponse.refusal(.badRequest, field: TransferAPI.field(of: error), TransferAPI.describe(error)))
        }
    }
}
