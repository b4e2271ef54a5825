import FaxgateCore
import Foundation
import Hummingbird

extension WebServer {
    static func registerAccountRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
    }
}
