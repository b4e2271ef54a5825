import FaxgateCore
import Foundation
import Hummingbird

extension WebServer {
    static func registerSettingsRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
    }
}
