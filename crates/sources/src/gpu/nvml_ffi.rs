//! The three NVML calls `nvml-wrapper` 0.13 does not wrap, made through the library handle
//! it already loaded: a MIG device's GPU and compute instance ids
//! (`nvmlDeviceGetGpuInstanceId`, `nvmlDeviceGetComputeInstanceId`) and the GPU's fabric
//! state (`nvmlDeviceGetGpuFabricInfoV`, falling back to `nvmlDeviceGetGpuFabricInfo` on
//! drivers without the versioned call).
//!
//! This is the only `unsafe` in the crate. Every call passes a device handle that
//! `nvml-wrapper` obtained from this same library and that lives as long as its `Device`,
//! plus a pointer to a local, zero-initialised output of exactly the C type the function
//! writes. A symbol the installed driver does not export is checked before the call (the
//! generated wrappers would panic on it) and reads as "not supported".
#![allow(unsafe_code)]

use nvml_wrapper::error::{NvmlError, nvml_try};
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlGpuFabricInfo_t, nvmlGpuFabricInfoV_t,
    nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH, nvmlReturn_enum_NVML_SUCCESS,
    nvmlReturn_t,
};

/// The fabric manager's view of one GPU, as NVML reports it (Hopper and newer with NVSwitch).
#[derive(Debug, Clone, PartialEq)]
pub struct FabricInfo {
    /// `NVML_GPU_FABRIC_STATE_*`: 0 not supported, 1 not started, 2 in progress, 3 completed.
    pub state: u8,
    /// Whether the registration that completed failed (`status` is not `NVML_SUCCESS`).
    pub failed: bool,
    /// The fabric clique the GPU belongs to.
    pub clique_id: u32,
    /// The cluster's UUID, as 32 hex digits in 8-4-4-4-12 form.
    pub cluster_uuid: String,
    /// The health mask (`NVML_GPU_FABRIC_HEALTH_MASK_*`); `None` from the unversioned call.
    pub health_mask: Option<u32>,
}

/// `NVML_STRUCT_VERSION(GpuFabricInfo, 3)`: the struct size with the version in the top byte.
fn fabric_info_v3_version() -> u32 {
    // The struct is a few dozen bytes: the cast cannot truncate.
    (std::mem::size_of::<nvmlGpuFabricInfoV_t>() as u32) | (3 << 24)
}

fn handle(device: &Device<'_>) -> nvmlDevice_t {
    // SAFETY: reading the raw handle has no side effect; it stays valid while `device` lives,
    // and every use below is within this borrow.
    unsafe { device.handle() }
}

/// The signature of NVML's id getters on a MIG device handle.
type IdCall = unsafe extern "C" fn(nvmlDevice_t, *mut std::os::raw::c_uint) -> nvmlReturn_t;

/// Calls one of NVML's id getters, if the installed driver exports it.
fn instance_id<E>(
    call: Result<&IdCall, E>,
    symbol: &str,
    mig: &Device<'_>,
) -> Result<u32, NvmlError> {
    let Ok(call) = call else {
        return Err(NvmlError::FailedToLoadSymbol(symbol.into()));
    };
    let mut id: u32 = 0;
    // SAFETY: a handle of this library and a pointer to a local `c_uint`.
    nvml_try(unsafe { call(handle(mig), &mut id) })?;
    Ok(id)
}

/// A MIG device handle's GPU instance id (DCGM's `GPU_I_ID`).
pub fn gpu_instance_id(nvml: &Nvml, mig: &Device<'_>) -> Result<u32, NvmlError> {
    let lib = nvml.lib();
    instance_id(
        lib.nvmlDeviceGetGpuInstanceId.as_ref(),
        "nvmlDeviceGetGpuInstanceId",
        mig,
    )
}

/// A MIG device handle's compute instance id.
pub fn compute_instance_id(nvml: &Nvml, mig: &Device<'_>) -> Result<u32, NvmlError> {
    let lib = nvml.lib();
    instance_id(
        lib.nvmlDeviceGetComputeInstanceId.as_ref(),
        "nvmlDeviceGetComputeInstanceId",
        mig,
    )
}

/// The GPU's fabric state. `Err(NotSupported)` on GPUs and drivers without a fabric.
pub fn fabric_info(nvml: &Nvml, device: &Device<'_>) -> Result<FabricInfo, NvmlError> {
    let lib = nvml.lib();
    if let Ok(call) = lib.nvmlDeviceGetGpuFabricInfoV.as_ref() {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut info: nvmlGpuFabricInfoV_t = unsafe { std::mem::zeroed() };
        info.version = fabric_info_v3_version();
        // SAFETY: a handle of this library and a pointer to a local struct of the type the
        // function takes, its version field set as the header's macro sets it.
        let code = unsafe { call(handle(device), &mut info) };
        match nvml_try(code) {
            Ok(()) => {
                return Ok(FabricInfo {
                    state: info.state,
                    failed: info.status != nvmlReturn_enum_NVML_SUCCESS,
                    clique_id: info.cliqueId,
                    cluster_uuid: uuid_string(&info.clusterUuid),
                    health_mask: Some(info.healthMask),
                });
            }
            // A driver that knows the call but not version 3 of the struct: use version 1.
            Err(NvmlError::UnexpectedVariant(c))
                if c == nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH => {}
            Err(e) => return Err(e),
        }
    }
    let Ok(call) = lib.nvmlDeviceGetGpuFabricInfo.as_ref() else {
        return Err(NvmlError::NotSupported);
    };
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: nvmlGpuFabricInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a handle of this library and a pointer to a local struct of the type it takes.
    nvml_try(unsafe { call(handle(device), &mut info) })?;
    Ok(FabricInfo {
        state: info.state,
        failed: info.status != nvmlReturn_enum_NVML_SUCCESS,
        clique_id: info.cliqueId,
        cluster_uuid: uuid_string(&info.clusterUuid),
        health_mask: None,
    })
}

/// 16 bytes as a UUID string (`8-4-4-4-12` hex digits).
fn uuid_string(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_uuid_prints_as_a_uuid() {
        let mut b = [0u8; 16];
        for (i, v) in b.iter_mut().enumerate() {
            *v = i as u8 * 17;
        }
        assert_eq!(uuid_string(&b), "00112233-4455-6677-8899-aabbccddeeff");
    }

    #[test]
    fn the_versioned_struct_matches_the_nvml_header() {
        // nvml.h: nvmlGpuFabricInfo_v3 = NVML_STRUCT_VERSION(GpuFabricInfo, 3), the struct
        // being version, clusterUuid[16], status, cliqueId, state (u8), healthMask,
        // healthSummary (u8): 40 bytes with C padding. A driver rejects any other value.
        assert_eq!(fabric_info_v3_version(), 0x0300_0028);
    }
}
