import Foundation

/// How the transport takes a voice call: ring, greet, beep, record; and how to fall back to fax on a CNG tone.
public struct VoiceAnswer: Sendable, Equatable {
    public var receptionID: Int64
    /// Delay before answering, with ALERT sent so the caller hears ringing.
    public var ringDelay: Duration
    /// Greeting followed by the beep, in line format (bit-reversed A-law, 8000 bytes/s).
    public var greeting: [UInt8]
    /// Recording limit, measured in audio received (not wall time), so a faster-than-real-time line agrees.
    public var maxSeconds: Double
    /// End the recording after this much trailing silence; 0 = never.
    public var silenceSeconds: Double
    /// Where the recording goes (line bytes), durably.
    public var recording: ReceptionSpoolFile
    /// What a fax tone switches to; nil = ignore fax tones.
    public var faxFallback: FaxFallback?

    public struct FaxFallback: Sendable, Equatable {
        public var stationID: String
        public var headline: String
        public var fine: Bool
        /// The SFF spool file created when the switch happens.
        public var spoolPath: String
        public init(stationID: String, headline: String, fine: Bool, spoolPath: String) {
            self.stationID = stationID; self.headline = headline; self.fine = fine; self.spoolPath = spoolPath
        }
    }

    public init(receptionID: Int64, ringDelay: Duration = .zero, greeting: [UInt8], maxSeconds: Double, silenceSeconds: Double,
                recording: ReceptionSpoolFile, faxFallback: FaxFallback?) {
        self.receptionID = receptionID; self.ringDelay = ringDelay; self.greeting = greeting; self.maxSeconds = maxSeconds
        self.silenceSeconds = silenceSeconds; self.recording = recording; self.faxFallback = faxFallback
    }
    public static func == (a: VoiceAnswer, b: VoiceAnswer) -> Bool { a.receptionID == b.receptionID }
}

/// How a voice call ended.
public struct VoiceCallEnd: Sendable, Equatable, Codable {
    public enum Cause: String, Sendable, Codable {
        case hangUp          // the caller hung up
        case maxLength       // the recording reached max_seconds
        case silence         // silence_seconds of silence
        case dtmfHash        // the caller pressed '#'
        case interrupted     // controller lost or gateway shut down
    }
    public var cause: Cause
    /// CAPI DISCONNECT_IND reason.
    public var reason: Int
    public var text: String
    /// Seconds of audio recorded after the beep.
    public var recordedSeconds: Double
    /// The whole greeting (and beep) was played before the call ended.
    public var greetingCompleted: Bool
    public init(cause: Cause, reason: Int, text: String, recordedSeconds: Double, greetingCompleted: Bool) {
        self.cause = cause; self.reason = reason; self.text = text; self.recordedSeconds = recordedSeconds
        self.greetingCompleted = greetingCompleted
    }
}

extension ReceptionHandler {
    /// Handlers that never answer voice calls need not implement the voice callbacks.
    public func voiceEnded(receptionID: Int64, end: VoiceCallEnd) async {}
    public func voiceSwitchedToFax(receptionID: Int64, spoolPath: String) async {}
}
