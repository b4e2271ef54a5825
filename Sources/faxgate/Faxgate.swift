import ArgumentParser
import FaxgateApp

/// Entry point. `@main` on an AsyncParsableCommand makes Swift use the library's async `main()`; a call
/// from top-level code picks the synchronous overload, which cannot run async subcommands.
@main
struct Faxgate: AsyncParsableCommand {
    static let configuration = FaxgateCommand.configuration
}
