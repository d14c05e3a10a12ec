public import NIOCore

/// TLS 1.3 over a channel: ciphertext below, plaintext above.
///
/// - A client starts the handshake as soon as the channel is active; a server on the first
///   bytes received. `TLSHandshakeCompleted` is fired as a user inbound event on completion.
/// - All the plaintext of one network read reaches the next handler as one `channelRead`.
/// - Writes are encrypted as they come and sent as one buffer on `flush`; writes made before
///   the handshake completes are held and sent after it.
/// - `close` sends close_notify first; the peer's close_notify closes the channel.
/// - Any failure (handshake, certificate, protocol, garbage bytes) sends OpenSSL's alert if it
///   made one, fires a `TLSError` with `errorCaught` and closes the channel. A server closes its
///   output only, then discards what the client still sends until the client closes or
///   `failureLinger` passes: the handlers above must not close the channel on a `TLSError`.
public final class TLSHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        /// Created; a client waits for the channel to become active, a server for bytes.
        case idle
        case handshaking
        case active
        /// Closed by us, by the peer's close_notify, or by a failure: nothing more is processed.
        case closed
    }

    private let tlsContext: TLSContext
    private let serverHostname: String?
    private let sessionKey: String?
    private var connection: TLSConnection?
    private var state: State = .idle
    /// Writes held until the handshake completes.
    private var heldWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushHeld = false
    /// Promises of writes encrypted into the write BIO but not yet handed to the channel.
    private var unsentPromises: [EventLoopPromise<Void>] = []
    private var outputClosed = false

    /// How long a server that refused a client keeps reading (and discarding) after its alert,
    /// waiting for the client to close. Closing with unread bytes (a client writes its first
    /// request right after its side of the handshake, before it has seen the refusal) makes the
    /// kernel send a reset, which destroys the alert on its way or in the client's buffers.
    public static let failureLinger: TimeAmount = .seconds(2)

    /// - Parameters:
    ///   - context: a server or client context; it decides this handler's role.
    ///   - serverHostname: client only: the DNS name or IP literal the server certificate must
    ///     name; a DNS name is also sent as SNI. Nil checks the chain only.
    ///   - sessionKey: client only: names the server (e.g. `host:port`) in the context's session
    ///     cache; a connection with a key offers the session cached under it and caches the
    ///     tickets it receives. Nil neither resumes nor caches.
    public init(context: TLSContext, serverHostname: String? = nil, sessionKey: String? = nil) {
        self.tlsContext = context
        self.serverHostname = serverHostname
        self.sessionKey = sessionKey
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        do throws(TLSError) {
            self.connection = try TLSConnection(
                context: self.tlsContext, serverHostname: self.serverHostname, sessionKey: self.sessionKey
            )
        } catch {
            self.fail(context: context, error)
            return
        }
        if self.tlsContext.role == .client, context.channel.isActive {
            self.startHandshake(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.state = .closed
        self.failPendingWrites(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if self.tlsContext.role == .client, case .idle = self.state {
            self.startHandshake(context: context)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let previous = self.state
        self.state = .closed
        self.failPendingWrites(ChannelError.ioOnClosedChannel)
        switch previous {
        case .handshaking:
            context.fireErrorCaught(
                TLSError(code: .handshakeFailed, message: "the connection closed before the TLS handshake completed")
            )
        case .active:
            if self.tlsContext.role == .client, self.connection?.receivedApplicationData == false {
                context.fireErrorCaught(
                    TLSError(
                        code: .uncleanShutdown,
                        message: "the server closed the connection without a word after the handshake "
                            + "(it may have rejected this client's certificate)"
                    )
                )
            } else {
                context.fireErrorCaught(
                    TLSError(code: .uncleanShutdown, message: "the connection closed without a TLS close_notify")
                )
            }
        case .idle, .closed:
            break
        }
        context.fireChannelInactive()
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection = self.connection else { return }
        let buffer = self.unwrapInboundIn(data)
        switch self.state {
        case .closed:
            return
        case .idle:
            self.state = .handshaking
        case .handshaking, .active:
            break
        }
        connection.feed(buffer)
        if case .handshaking = self.state {
            self.advanceHandshake(context: context, connection)
        } else {
            self.readPlaintext(context: context, connection)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        // Keep the handshake going even when the channel does not read automatically.
        if case .handshaking = self.state {
            context.read()
        }
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard let connection = self.connection, case .idle = self.state else { return }
        self.state = .handshaking
        self.advanceHandshake(context: context, connection)
    }

    private func advanceHandshake(context: ChannelHandlerContext, _ connection: TLSConnection) {
        switch connection.handshake() {
        case .wantRead:
            self.sendOutput(context: context)
        case .failed(let error):
            self.fail(context: context, error)
        case .complete:
            if let error = connection.verifiedPeerCheck() {
                self.fail(context: context, error)
                return
            }
            self.state = .active
            // The handshake's last flight (a server's session ticket, a client's Finished), the
            // held writes and whatever the next handler writes and flushes while handling the
            // completion event and the plaintext that came with the flight leave together: one
            // write to the socket instead of two or three.
            let held = self.heldWrites
            self.heldWrites = []
            for (buffer, promise) in held {
                self.encrypt(context: context, connection, buffer, promise: promise)
                guard case .active = self.state else { return }
            }
            self.flushHeld = false
            context.fireUserInboundEventTriggered(connection.handshakeCompleted())
            guard case .active = self.state else { return }
            self.readPlaintext(context: context, connection)
            if case .active = self.state, connection.pendingOutputBytes > 0 || !self.unsentPromises.isEmpty {
                self.sendOutput(context: context)
            }
        }
    }

    private func readPlaintext(context: ChannelHandlerContext, _ connection: TLSConnection) {
        var plaintext: ByteBuffer?
        let result = connection.readAll(into: &plaintext, allocator: context.channel.allocator)
        if let plaintext, plaintext.readableBytes > 0 {
            context.fireChannelRead(self.wrapInboundOut(plaintext))
            guard case .active = self.state else { return }
        }
        switch result {
        case .wantRead:
            // Post-handshake messages (key updates) may need an answer.
            if connection.pendingOutputBytes > 0 {
                self.sendOutput(context: context)
            }
        case .closeNotify:
            connection.shutdown()
            self.state = .closed
            self.failPendingWrites(ChannelError.ioOnClosedChannel)
            self.sendOutput(context: context)
            context.close(promise: nil)
        case .failed(let error):
            self.fail(context: context, error)
        }
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = self.unwrapOutboundIn(data)
        guard !self.outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        switch self.state {
        case .idle, .handshaking:
            self.heldWrites.append((buffer, promise))
        case .active:
            guard let connection = self.connection else { return }
            self.encrypt(context: context, connection, buffer, promise: promise)
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch self.state {
        case .idle, .handshaking:
            self.flushHeld = true
        case .active:
            self.sendOutput(context: context)
        case .closed:
            break
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            context.close(mode: mode, promise: promise)
            return
        case .output, .all:
            break
        }
        if case .active = self.state, !self.outputClosed, let connection = self.connection {
            connection.shutdown()
            self.sendOutput(context: context)
        }
        self.outputClosed = true
        if case .all = mode {
            self.state = .closed
            self.failPendingWrites(ChannelError.ioOnClosedChannel)
        }
        context.close(mode: mode, promise: promise)
    }

    private func encrypt(
        context: ChannelHandlerContext,
        _ connection: TLSConnection,
        _ buffer: ByteBuffer,
        promise: EventLoopPromise<Void>?
    ) {
        if buffer.readableBytes > 0, let error = connection.write(buffer) {
            promise?.fail(error)
            self.fail(context: context, error)
            return
        }
        if let promise {
            self.unsentPromises.append(promise)
        }
    }

    /// Hands everything in the write BIO to the channel as one buffer and flushes, completing the
    /// promises of the writes it carries.
    private func sendOutput(context: ChannelHandlerContext) {
        guard let connection = self.connection else { return }
        let promises = self.unsentPromises
        self.unsentPromises = []
        guard let output = connection.drainOutput(allocator: context.channel.allocator) else {
            for promise in promises {
                promise.succeed()
            }
            return
        }
        context.writeAndFlush(self.wrapOutboundOut(output), promise: Self.combine(promises, on: context.eventLoop))
    }

    private static func combine(_ promises: [EventLoopPromise<Void>], on eventLoop: any EventLoop) -> EventLoopPromise<Void>? {
        switch promises.count {
        case 0:
            return nil
        case 1:
            return promises[0]
        default:
            let combined = eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for promise in promises {
                    promise.completeWith(result)
                }
            }
            return combined
        }
    }

    // MARK: Failure

    /// Sends any alert OpenSSL produced, reports `error` and closes the channel (a server
    /// gracefully, see `failureLinger`).
    private func fail(context: ChannelHandlerContext, _ error: TLSError) {
        if case .closed = self.state { return }
        self.state = .closed
        self.sendOutput(context: context)
        self.failPendingWrites(error)
        context.fireErrorCaught(error)
        guard self.tlsContext.role == .server, context.channel.isActive, !self.outputClosed else {
            context.close(promise: nil)
            return
        }
        self.outputClosed = true
        // Reads stay on (the state is closed, so they are discarded) until the client's FIN or
        // reset closes the channel; a channel that cannot half-close is closed at once.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let halfClosed = context.eventLoop.makePromise(of: Void.self)
        halfClosed.futureResult.whenFailure { _ in bound.value.close(promise: nil) }
        context.close(mode: .output, promise: halfClosed)
        let linger = context.eventLoop.scheduleTask(in: Self.failureLinger) { bound.value.close(promise: nil) }
        context.channel.closeFuture.whenComplete { _ in linger.cancel() }
        context.read()
    }

    private func failPendingWrites(_ error: any Error) {
        let held = self.heldWrites
        let unsent = self.unsentPromises
        self.heldWrites = []
        self.unsentPromises = []
        for (_, promise) in held {
            promise?.fail(error)
        }
        for promise in unsent {
            promise.fail(error)
        }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
