/// The responses of a server-streaming call, in order. Iteration ends normally when the call
/// ends with OK and throws the call's status as a `VPCEPError` otherwise. Stopping early (break,
/// or cancelling the iterating task) cancels the call on the server.
///
/// Iterate it once: it is a single-pass sequence.
public struct ResponseStream<Element: Sendable>: AsyncSequence, Sendable {
    public typealias Failure = VPCEPError

    private let base: AsyncThrowingStream<Element, any Error>

    package init(_ base: AsyncThrowingStream<Element, any Error>) {
        self.base = base
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Failure = VPCEPError

        private var base: AsyncThrowingStream<Element, any Error>.AsyncIterator

        init(base: AsyncThrowingStream<Element, any Error>.AsyncIterator) {
            self.base = base
        }

        public mutating func next() async throws(VPCEPError) -> Element? {
            do {
                return try await base.next()
            } catch let error as VPCEPError {
                throw error
            } catch is CancellationError {
                throw VPCEPError(code: .cancelled, reason: "CANCELLED", message: "the call was cancelled by the caller")
            } catch {
                throw VPCEPError(code: .unknown, reason: "UNKNOWN", message: "\(error)")
            }
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(VPCEPError) -> Element? {
            do {
                return try await base.next(isolation: actor)
            } catch let error as VPCEPError {
                throw error
            } catch is CancellationError {
                throw VPCEPError(code: .cancelled, reason: "CANCELLED", message: "the call was cancelled by the caller")
            } catch {
                throw VPCEPError(code: .unknown, reason: "UNKNOWN", message: "\(error)")
            }
        }
    }
}
