import SoftFax
import XCTest
