import Foundation
import TestSupport

/// What Python's `email` package (policy.default) makes of a message: an independent MIME parser.
struct ParsedMail: Decodable {
    struct Attachment: Decodable {
        var filename: String?
        var contentType: String
        var hex: String
        var bytes: [UInt8] {
            var out: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                out.append(UInt8(hex[index..<next], radix: 16)!)
                index = next
            }
            return out
        }
    }
    var headerNames: [String]
    var subject: String?
    var fromName: String?
    var fromAddress: String?
    var toAddresses: [String]
    var toNames: [String]
    var headers: [String: String]
    var defects: [String]
    var body: String?
    var attachments: [Attachment]
}

private let parserScript = #"""
import email, json, sys
from email import policy
raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=policy.default)
out = {"headerNames": list(msg.keys()), "subject": msg["subject"], "headers": {k: str(v) for k, v in msg.items()},
       "defects": [repr(d) for d in msg.defects], "body": None, "attachments": [],
       "fromName": None, "fromAddress": None, "toAddresses": [], "toNames": []}
if msg["from"] is not None and msg["from"].addresses:
    out["fromName"] = msg["from"].addresses[0].display_name
    out["fromAddress"] = msg["from"].addresses[0].addr_spec
if msg["to"] is not None:
    out["toAddresses"] = [a.addr_spec for a in msg["to"].addresses]
    out["toNames"] = [a.display_name for a in msg["to"].addresses]
for part in msg.walk():
    if part.is_multipart():
        out["defects"] += [repr(d) for d in part.defects]
        continue
    out["defects"] += [repr(d) for d in part.defects]
    if part.get_content_disposition() == "attachment":
        out["attachments"].append({"filename": part.get_filename(), "contentType": part.get_content_type(),
                                   "hex": part.get_payload(decode=True).hex()})
    elif part.get_content_type() == "text/plain" and out["body"] is None:
        out["body"] = part.get_content()
print(json.dumps(out))
"""#

func parseWithPython(_ message: [UInt8]) throws -> ParsedMail {
    let dir = try TemporaryDirectory("faxgate-mime")
    let file = dir.url.appendingPathComponent("message.eml")
    try Data(message).write(to: file)
    let result = try runTool(MailServers.python3, ["-c", parserScript, file.path])
    return try JSONDecoder().decode(ParsedMail.self, from: result.stdout)
}
