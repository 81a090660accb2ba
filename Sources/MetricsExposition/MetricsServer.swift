import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// `--metrics-address`: answers `GET /metrics` with the registry in the Prometheus text format,
/// 404 anything else, on one SwiftNIO event loop thread of its own, so that a scrape never
/// takes a libfuse worker. It binds exactly the address given (no name lookup, no wildcard).
///
/// `beforeScrape` runs on the server's thread before each exposition: it sets the gauges that
/// are read from the filesystem's tables rather than counted (inodes, handles, uploads, Redis
/// up), so that no request pays for them.
public final class MetricsServer: Sendable {
    public let address: MetricsAddress
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// Binds and starts serving; throws `MetricsServerError` with one line saying what failed.
    public init(
        address: MetricsAddress, registry: PrometheusCollectorRegistry, beforeScrape: @escaping @Sendable () -> Void
    ) throws(MetricsServerError) {
        self.address = address
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(ScrapeHandler(registry: registry, beforeScrape: beforeScrape))
                }
            }
        do {
            channel = try bootstrap.bind(to: address.socketAddress).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw MetricsServerError("cannot listen for metrics on \(address): \(Self.reason(error))")
        }
        self.group = group
    }

    /// The port actually bound (the one given, or the kernel's choice for port 0).
    public var port: Int { channel.localAddress?.port ?? address.port }

    /// Where the metrics are.
    public var url: String {
        "http://\(address.host.contains(":") ? "[\(address.host)]" : address.host):\(port)/metrics"
    }

    /// Stops listening and ends the server's thread (at unmount).
    public func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }
}

/// What `--metrics-address` takes: an IPv4 address and port, or `[IPv6]:port`; a name is
/// refused, so that what is bound is exactly what was written.
public struct MetricsAddress: Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    let socketAddress: SocketAddress

    public init(parsing text: String) throws(MetricsServerError) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw MetricsServerError("bad metrics address \(text): expected [IPv6]:port")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw MetricsServerError("bad metrics address \(text): expected IPv4:port or [IPv6]:port")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw MetricsServerError("bad metrics address \(text): the port must be a number from 0 to 65535")
        }
        do {
            socketAddress = try SocketAddress(ipAddress: String(host), port: port)
        } catch {
            throw MetricsServerError("bad metrics address \(text): \(host) is not an IP address")
        }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why the metrics server could not start: one line for the user.
public struct MetricsServerError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One connection's requests: `GET /metrics` (with or without a query) or 404.
private final class ScrapeHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    let beforeScrape: @Sendable () -> Void

    init(registry: PrometheusCollectorRegistry, beforeScrape: @escaping @Sendable () -> Void) {
        self.registry = registry
        self.beforeScrape = beforeScrape
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let status: HTTPResponseStatus
        let body: [UInt8]
        var headers = HTTPHeaders()
        if path == "/metrics" && (head.method == .GET || head.method == .HEAD) {
            beforeScrape()
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            (status, body) = (.ok, buffer)
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        } else {
            (status, body) = (.notFound, Array("not found: metrics are at /metrics\n".utf8))
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        }
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let keepAlive = head.isKeepAlive
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
