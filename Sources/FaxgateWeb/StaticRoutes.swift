import FaxgateCore
import Foundation
import Hummingbird

extension WebServer {
    /// `/static/<name>`: the files of the bundle's `Static` folder, read once. Only names that are in that folder
    /// (flat, no `/`, no `..`) are served, so nothing outside it can be reached.
    static func registerStaticRoutes(_ router: Router<WebContext>) {
        let files = StaticFiles.load()
        router.get("/static/:name") { _, context -> Response in
            guard let name = context.parameters.get("name"), let file = files[name] else { throw HTTPError(.notFound) }
            return Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "public, max-age=3600"],
                            body: .init(byteBuffer: ByteBuffer(bytes: file.data)))
        }
    }
}

enum StaticFiles {
    static let types = ["css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml",
                        "png": "image/png", "ico": "image/x-icon", "woff2": "font/woff2"]

    /// Name → contents and type of every regular file directly in Static/ with a known type.
    static func load() -> [String: (data: [UInt8], type: String)] {
        guard let dir = Bundle.module.path(forResource: "Static", ofType: nil),
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [:] }
        var out: [String: (data: [UInt8], type: String)] = [:]
        for name in names where !name.hasPrefix(".") {
            guard let ext = name.split(separator: ".").last.map(String.init), let type = types[ext],
                  let data = FileManager.default.contents(atPath: dir + "/" + name) else { continue }
            out[name] = ([UInt8](data), type)
        }
        return out
    }
}
