import Synchronization

/// A commit version and the services whose records may have changed since a version asked about: what
/// the registry's read cache needs to keep every other cached service across a commit.
public struct CommitChanges: Sendable, Equatable {
    /// As `RegistryStore.currentCommitVersion()`.
    public var version: UInt64
    /// Every service (by id) whose record, allow-list or endpoints a commit after the version asked
    /// about, up to `version`, may have changed; `nil` when the store cannot say, which means anything
    /// may have changed.
    public var services: Set<String>?

    public init(version: UInt64, services: Set<String>?) {
        self.version = version
        self.services = services
    }
}

/// Which services recent commit versions changed, for `RegistryStore.commitChanges(since:)`: a store
/// records every version it learns of, in order, with the services its change-log events name (every
/// change to a service, its allow-list or its endpoints logs an event naming the service, in the same
/// transaction). Bounded: the oldest versions are forgotten, and asking about a version before what is
/// remembered gets `nil` (anything may have changed).
public final class ServiceChangeHistory: Sendable {
    /// How many service ids are remembered in all, over every remembered version.
    public static let defaultCapacity = 65_536

    fileprivate struct Entry {
        /// The entry covers the versions after the previous entry's (or the floor) up to this one.
        var version: UInt64
        var services: Set<String>
    }

    fileprivate struct State {
        /// Versions after `floor` up to `latest` are known; nil before the first.
        var floor: UInt64?
        var latest: UInt64?
        var entries: [Entry] = []
        /// Entries before this index are forgotten (removed in bulk, not one at a time).
        var first = 0
        var remembered = 0
    }

    private let capacity: Int
    private let state: Mutex<State>

    /// `startingAt`: the version before any change is recorded (0 for a store that counts every commit
    /// from its opening), or nil when the first `record` only tells where knowledge begins.
    public init(startingAt version: UInt64?, capacity: Int = ServiceChangeHistory.defaultCapacity) {
        self.capacity = capacity
        state = Mutex(State(floor: version, latest: version))
    }

    /// The newest version recorded.
    public var latest: UInt64? { state.withLock { $0.latest } }

    /// The commits after the latest recorded version up to `version` changed `services` (nil: unknown).
    public func record(through version: UInt64, services: Set<String>?) {
        state.withLock { state in
            guard let latest = state.latest else {
                (state.floor, state.latest) = (version, version)
                return
            }
            guard version > latest else { return }
            state.latest = version
            guard let services else {
                state.floor = version
                state.entries = []
                state.first = 0
                state.remembered = 0
                return
            }
            // Versions without an entry changed no service.
            guard !services.isEmpty else { return }
            state.entries.append(Entry(version: version, services: services))
            state.remembered += services.count
            state.forgetBeyondCapacity(capacity)
        }
    }

    /// Records the commits after `since` up to `version`, which changed `services`, when everything up
    /// to `since` is already recorded (a writer that knows every commit in between: its own, made under
    /// a lock that kept every other writer out). True when `version` is now covered (recorded here or
    /// by someone before); false when versions before `since` are missing, so the caller must look.
    public func record(after since: UInt64, through version: UInt64, services: Set<String>) -> Bool {
        state.withLock { state in
            guard let latest = state.latest else { return false }
            if latest >= version { return true }
            guard latest == since else { return false }
            state.latest = version
            if !services.isEmpty {
                state.entries.append(Entry(version: version, services: services))
                state.remembered += services.count
                state.forgetBeyondCapacity(capacity)
            }
            return true
        }
    }

    /// The services changed after `since` up to at least `version` (a superset: some may have changed
    /// later), or nil when that is not known.
    public func changes(after since: UInt64, through version: UInt64) -> Set<String>? {
        guard since < version else { return [] }
        return state.withLock { state in
            guard let floor = state.floor, let latest = state.latest, since >= floor, version <= latest else { return nil }
            var changed = Set<String>()
            var index = state.entries.count - 1
            while index >= state.first, state.entries[index].version > since {
                changed.formUnion(state.entries[index].services)
                index -= 1
            }
            return changed
        }
    }
}

extension ServiceChangeHistory.State {
    /// Forgets the oldest versions until at most `capacity` service ids are remembered.
    fileprivate mutating func forgetBeyondCapacity(_ capacity: Int) {
        while remembered > capacity, first < entries.count {
            remembered -= entries[first].services.count
            floor = entries[first].version
            first += 1
        }
        if first > 64, first * 2 > entries.count {
            entries.removeFirst(first)
            first = 0
        }
    }
}
