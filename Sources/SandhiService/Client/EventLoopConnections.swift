import NIOCore
import NIOHTTP1
import NIOPosix
import SandhiRuntime

/// Kept-alive HTTP/1.1 connections to the service's unix socket on one event loop of their
/// own: what `sandhi bench --via api` drives, a connection per client, so that the client's
/// cost is a few microseconds of event-loop work per request, not two thread hand-offs.
public final class EventLoopConnections: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channels: [any Channel]
    private let free: Lock<[Int]>

    public init(socket path: String, count: Int) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var channels: [any Channel] = []
        do {
            for _ in 0..<count {
                let channel = try await ClientBootstrap(group: group)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            try channel.pipeline.syncOperations.addHandler(AnswerHandler())
                        }
                    }
                    .connect(unixDomainSocketPath: path).get()
                channels.append(channel)
            }
        } catch {
            for channel in channels { try? await channel.close() }
            try? await group.shutdownGracefully()
            throw error
        }
        self.channels = channels
        free = Lock(Array(channels.indices))
    }

    /// POSTs `body` to `path` on a free connection and returns the answer's status and body.
    public func post(_ path: String, body: [UInt8]) async throws -> (status: Int, body: [UInt8]) {
        guard let index = free.withLock({ $0.popLast() }) else { throw ServiceClientError.unreachable("every connection is busy") }
        defer { free.withLock { $0.append(index) } }
        let channel = channels[index]
        let promise = channel.eventLoop.makePromise(of: (Int, [UInt8]).self)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers = ["Host": "sandhi", "Content-Type": "application/json", "Content-Length": String(body.count)]
        let buffer = channel.allocator.buffer(bytes: body)
        channel.pipeline.writeAndFlush(Request(head: head, body: buffer, answer: promise), promise: nil)
        return try await promise.futureResult.get()
    }

    public func close() async {
        for channel in channels { try? await channel.close() }
        try? await group.shutdownGracefully()
    }

    struct Request {
        var head: HTTPRequestHead
        var body: ByteBuffer
        var answer: EventLoopPromise<(Int, [UInt8])>
    }

    /// Writes a request and completes its promise with the answer; one at a time per connection.
    final class AnswerHandler: ChannelDuplexHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundIn = Request
        typealias OutboundOut = HTTPClientRequestPart

        private var waiting: EventLoopPromise<(Int, [UInt8])>?
        private var status = 0
        private var body: [UInt8] = []

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let request = unwrapOutboundIn(data)
            waiting = request.answer
            status = 0
            body.removeAll(keepingCapacity: true)
            context.write(wrapOutboundOut(.head(request.head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
            context.write(wrapOutboundOut(.end(nil)), promise: promise)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): status = Int(head.status.code)
            case .body(let buffer): body += buffer.readableBytesView
            case .end:
                let answer = waiting
                waiting = nil
                answer?.succeed((status, body))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            waiting?.fail(error)
            waiting = nil
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            waiting?.fail(ServiceClientError.unreachable("the service closed the connection"))
            waiting = nil
        }
    }
}
