//! Runtime selection for a container: the shim name plus its typed options.
//!
//! containerd-client compiles neither the runc shim's options
//! (`containerd.runc.v1.Options`) nor the generic `runtimeoptions.v1.Options`,
//! so both are declared here by hand, with containerd 1.6's field numbers.
//! They must be packed with [`containerd_client::to_any`], whose type URL is the
//! bare full name (`containerd.runc.v1.Options`): containerd 1.6 rejects the
//! `type.googleapis.com/…` and `/…` forms.

use prost_types::Any;

/// The runc v2 shim, containerd's default runtime.
pub const RUNC_V2: &str = "io.containerd.runc.v2";

/// Options of the runc shim (`io.containerd.runc.v2`): proto package
/// `containerd.runc.v1`, message `Options` (api/types/runc/options/oci.proto).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RuncOptions {
    /// Disable pivot_root (for ramdisk roots).
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    /// Do not create a new session keyring.
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    /// Cgroup to put the shim in.
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    /// Uid owning the IO pipes.
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    /// Gid owning the IO pipes.
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    /// The OCI runtime binary the shim calls (absolute path, or a name looked
    /// up on the shim's PATH). Empty = `runc`.
    #[prost(string, tag = "6")]
    pub binary_name: String,
    /// The runtime's state root; the shim appends `/<namespace>`.
    /// Empty = `/run/containerd/runc`.
    #[prost(string, tag = "7")]
    pub root: String,
    // Tag 8 (criu_path) is reserved.
    /// Use the systemd cgroup driver.
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
    /// Checkpoint image path.
    #[prost(string, tag = "10")]
    pub criu_image_path: String,
    /// Checkpoint work path.
    #[prost(string, tag = "11")]
    pub criu_work_path: String,
}

impl prost::Name for RuncOptions {
    const NAME: &'static str = "Options";
    const PACKAGE: &'static str = "containerd.runc.v1";
}

/// Generic options for shims other than runc: proto package
/// `runtimeoptions.v1`, message `Options`
/// (api/types/runtimeoptions/v1/api.proto).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RuntimeOptions {
    /// Type of the content of the config file.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// Path of the runtime's config file.
    #[prost(string, tag = "2")]
    pub config_path: String,
    /// In-memory (TOML) config, used when `config_path` is empty.
    #[prost(bytes = "vec", tag = "3")]
    pub config_body: Vec<u8>,
}

impl prost::Name for RuntimeOptions {
    const NAME: &'static str = "Options";
    const PACKAGE: &'static str = "runtimeoptions.v1";
}

/// Which shim runs a container, and with what options.
#[derive(Debug, Clone, PartialEq)]
pub struct ShimRuntime {
    /// Shim name, e.g. `io.containerd.runc.v2`.
    pub name: String,
    /// Shim options (already packed), if any.
    pub options: Option<Any>,
}

impl ShimRuntime {
    /// The runc v2 shim with the given options.
    pub fn runc(options: &RuncOptions) -> Self {
        ShimRuntime { name: RUNC_V2.to_string(), options: Some(containerd_client::to_any(options)) }
    }

    /// Any shim with generic `runtimeoptions.v1.Options`.
    pub fn generic(name: impl Into<String>, options: &RuntimeOptions) -> Self {
        ShimRuntime { name: name.into(), options: Some(containerd_client::to_any(options)) }
    }

    /// A shim with no options.
    pub fn bare(name: impl Into<String>) -> Self {
        ShimRuntime { name: name.into(), options: None }
    }

    /// Decodes the options back into [`RuncOptions`] when they are runc's.
    pub fn runc_options(&self) -> Option<RuncOptions> {
        let any = self.options.as_ref()?;
        if any.type_url != "containerd.runc.v1.Options" {
            return None;
        }
        <RuncOptions as prost::Message>::decode(any.value.as_slice()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn type_urls_are_bare_full_names() {
        let rt = ShimRuntime::runc(&RuncOptions { binary_name: "/x/runc".into(), ..Default::default() });
        assert_eq!(rt.options.as_ref().unwrap().type_url, "containerd.runc.v1.Options");
        assert_eq!(rt.runc_options().unwrap().binary_name, "/x/runc");
        let g = ShimRuntime::generic("io.containerd.kata.v2", &RuntimeOptions { config_path: "/etc/k.toml".into(), ..Default::default() });
        assert_eq!(g.options.unwrap().type_url, "runtimeoptions.v1.Options");
    }

    #[test]
    fn field_numbers() {
        // binary_name = field 6, wire type 2 → key 0x32; root = field 7 → 0x3a;
        // systemd_cgroup = field 9, varint → 0x48.
        let o = RuncOptions { binary_name: "a".into(), root: "b".into(), systemd_cgroup: true, ..Default::default() };
        assert_eq!(o.encode_to_vec(), vec![0x32, 1, b'a', 0x3a, 1, b'b', 0x48, 1]);
        // config_body = field 3 bytes → 0x1a.
        let g = RuntimeOptions { config_body: vec![7], ..Default::default() };
        assert_eq!(g.encode_to_vec(), vec![0x1a, 1, 7]);
    }
}
