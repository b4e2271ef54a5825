import FaxgateCore
import Foundation
import Hummingbird

extension WebServer {
    static func registerOperationsRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
    }
}
