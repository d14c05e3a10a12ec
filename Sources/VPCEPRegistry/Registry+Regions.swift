extension Registry {
    /// Checks the call's region and caller as every other call does, for calls that touch no
    /// resource (Health): a region this registry does not serve fails with `REGION_NOT_SERVED`.
    public func checkScope(_ ctx: CallContext) throws(RegistryError) {
        _ = try scope(ctx)
    }
}
