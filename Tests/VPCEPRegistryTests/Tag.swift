import VPCEPRegistry

/// `Testing` has a `Tag` too.
typealias Tag = VPCEPRegistry.Tag
