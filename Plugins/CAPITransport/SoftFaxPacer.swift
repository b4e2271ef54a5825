/// Transmit pacing for the software modem on a transparent B-channel, without I/O.
///
/// The line is the clock: every DATA_B3_IND of n bytes means n bytes of call time went by in both directions,
/// so for every block received the modem must hand the controller n bytes to send. A sending modem must never
/// starve (one 20 ms gap inside a V.17 page breaks the page), so a few blocks are primed ahead at the start.
/// The controller takes at most `window` unconfirmed DATA_B3_REQ (the maxBDataBlocks we registered); audio
/// produced while the window is full waits here until a DATA_B3_CONF frees a slot.
public struct SoftFaxPacer: Sendable, Equatable {
    public struct Block: Sendable, Equatable {
        public var handle: UInt16
        public var data: [UInt8]
    }

    /// Most DATA_B3_REQ without DATA_B3_CONF.
    public let window: Int
    /// Blocks of `primeBytes` sent ahead of the line when the channel starts.
    public let primeBlocks: Int
    /// 20 ms of A-law.
    public let primeBytes: Int
    /// Produced blocks kept while the window is full; beyond this the oldest is dropped (bounded memory).
    public let maxQueued: Int
    /// Largest DATA_B3_REQ payload (the maxBDataLen registered): a longer line block is answered in pieces.
    public let maxBlockBytes: Int

    public private(set) var unconfirmed: Set<UInt16>
    public private(set) var queued: [[UInt8]] = []
    private var nextHandle: UInt16
    private var primed = false
    /// Bytes handed to the controller minus bytes of line time elapsed: how far ahead of the line we are.
    public private(set) var lead = 0
    /// Times the line ran past everything we had handed over (the controller had to fill a gap).
    public private(set) var underruns = 0
    /// Blocks dropped because the queue was full.
    public private(set) var dropped = 0
    /// Highest number of unconfirmed DATA_B3_REQ seen (for tests and logs).
    public private(set) var maxUnconfirmed = 0

    /// `outstanding`: DATA_B3_REQ of an earlier use of the channel (a voice greeting) still unconfirmed; they
    /// occupy the window until confirmed. `nextHandle`: first handle to use, past those.
    public init(window: Int = 7, primeBlocks: Int = 3, primeBytes: Int = 160, maxQueued: Int = 50,
                outstanding: Set<UInt16> = [], nextHandle: UInt16 = 1, maxBlockBytes: Int = 2048) {
        self.window = max(1, window); self.primeBlocks = max(0, primeBlocks); self.primeBytes = max(1, primeBytes)
        self.maxQueued = max(1, maxQueued)
        self.maxBlockBytes = max(1, maxBlockBytes)
        self.unconfirmed = outstanding
        self.nextHandle = nextHandle == 0 ? 1 : nextHandle
        self.maxUnconfirmed = outstanding.count
    }

    /// The line delivered a block of `count` bytes: the sizes of the blocks of audio to produce now (the
    /// primer first, once), each to be passed to `enqueue`.
    public mutating func lineBlockReceived(count: Int) -> [Int] {
        guard count > 0 else { return [] }
        var sizes: [Int] = []
        if !primed {
            primed = true
            sizes = Array(repeating: primeBytes, count: primeBlocks)
        } else {
            lead -= count
            if lead < 0 {
                // The controller had less than this block left to send: it played filler.
                underruns += 1
                lead = 0
            }
        }
        // A block longer than the controller takes (none should come, but the other side is not ours): in pieces.
        var rest = count
        while rest > 0 { sizes.append(min(rest, maxBlockBytes)); rest -= maxBlockBytes }
        return sizes
    }

    /// Audio produced for the line: the DATA_B3_REQ blocks to send now (none while the window is full).
    public mutating func enqueue(_ data: [UInt8]) -> [Block] {
        guard !data.isEmpty else { return [] }
        queued.append(data)
        if queued.count > maxQueued {
            queued.removeFirst()
            dropped += 1
        }
        return drain()
    }

    /// DATA_B3_CONF for `handle`: frees its slot; returns the waiting blocks that now fit. Unknown handles
    /// (not ours) change nothing.
    public mutating func confirmed(handle: UInt16) -> [Block] {
        guard unconfirmed.remove(handle) != nil else { return [] }
        return drain()
    }

    /// B3 is gone: no DATA_B3_CONF follows, nothing more goes out.
    public mutating func lineDown() {
        unconfirmed.removeAll()
        queued.removeAll()
    }

    private mutating func drain() -> [Block] {
        var blocks: [Block] = []
        while unconfirmed.count < window, !queued.isEmpty {
            let data = queued.removeFirst()
            var handle = nextHandle
            while unconfirmed.contains(handle) { handle = handle == .max ? 1 : handle + 1 }
            nextHandle = handle == .max ? 1 : handle + 1
            unconfirmed.insert(handle)
            maxUnconfirmed = max(maxUnconfirmed, unconfirmed.count)
            lead += data.count
            blocks.append(Block(handle: handle, data: data))
        }
        return blocks
    }
}
