import Synchronization

/// Open file handles by number, as go-fuse keeps them (`registerFile` / `freeFiles`): an index
/// into a table with a free list, never a pointer the kernel hands back. A number the kernel sends
/// that names no open file is `nil`, not a crash; numbers are reused only after their release.
final class HandleTable: Sendable {
    private struct State {
        var slots: [OpenFile?] = []
        var free: [Int] = []
        var count = 0
    }

    private let state = Mutex(State())

    /// Registers `file`; its number is never 0 (0 is "no handle" to libfuse's callers).
    func insert(_ file: OpenFile) -> UInt64 {
        state.withLock { state in
            state.count += 1
            if let index = state.free.popLast() {
                state.slots[index] = file
                return UInt64(index + 1)
            }
            state.slots.append(file)
            return UInt64(state.slots.count)
        }
    }

    subscript(number: UInt64) -> OpenFile? {
        state.withLock { state in
            guard let index = Self.index(number, in: state) else { return nil }
            return state.slots[index]
        }
    }

    /// Forgets the handle `number` (its release) and returns what it held.
    func remove(_ number: UInt64) -> OpenFile? {
        state.withLock { state in
            guard let index = Self.index(number, in: state), let file = state.slots[index] else { return nil }
            state.slots[index] = nil
            state.free.append(index)
            state.count -= 1
            return file
        }
    }

    /// Handles open now.
    var count: Int { state.withLock { $0.count } }

    private static func index(_ number: UInt64, in state: State) -> Int? {
        guard number > 0, number <= UInt64(state.slots.count) else { return nil }
        return Int(number - 1)
    }
}
