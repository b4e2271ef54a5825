import FaxgateApp

await FaxgateCommand.main()
