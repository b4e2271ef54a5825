import FaxgateCore
import Foundation
import Hummingbird

extension WebServer {
    static func registerPrivacyRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
    }
}
