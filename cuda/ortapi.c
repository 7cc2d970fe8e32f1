#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "ortapi.h"

static const OrtApi *api = NULL;
static void *core = NULL;
static char core_file[4096];

const char *infergo_ort_init(const char *path) {
  if (api != NULL) return NULL;
  void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL) return "the ONNX Runtime core library is not loaded in this process";
  typedef const OrtApiBase *(*get_base_fn)(void);
  get_base_fn get_base = (get_base_fn)dlsym(h, "OrtGetApiBase");
  if (get_base == NULL) {
    dlclose(h);
    return "OrtGetApiBase not found in the ONNX Runtime core library";
  }
  const OrtApi *a = get_base()->GetApi(ORT_API_VERSION);
  if (a == NULL) {
    dlclose(h);
    return "the ONNX Runtime core library does not offer the C API version Infergo was built for (too old)";
  }
  Dl_info info;
  if (dladdr((void *)get_base, &info) != 0 && info.dli_fname != NULL) {
    snprintf(core_file, sizeof core_file, "%s", info.dli_fname);
  }
  core = h;
  api = a;
  return NULL;
}

const char *infergo_ort_core_path(void) { return core_file[0] ? core_file : NULL; }

const char *infergo_dlopen_check(const char *name, char *buf, size_t len) {
  dlerror();
  void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
  if (h != NULL) {
    dlclose(h);
    return NULL;
  }
  const char *e = dlerror();
  snprintf(buf, len, "%s", e ? e : "dlopen failed");
  return buf;
}

const char *infergo_status_message(OrtStatus *s) { return api->GetErrorMessage(s); }
void infergo_release_status(OrtStatus *s) { api->ReleaseStatus(s); }

OrtStatus *infergo_create_env(OrtEnv **out) {
  return api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "infergo", out);
}
void infergo_release_env(OrtEnv *env) { api->ReleaseEnv(env); }

OrtStatus *infergo_get_ep_devices(const OrtEnv *env, const OrtEpDevice *const **out, size_t *n) {
  return api->GetEpDevices(env, out, n);
}
const char *infergo_ep_name(const OrtEpDevice *d) { return api->EpDevice_EpName(d); }
const char *infergo_ep_vendor(const OrtEpDevice *d) { return api->EpDevice_EpVendor(d); }
int infergo_hw_type(const OrtEpDevice *d) { return (int)api->HardwareDevice_Type(api->EpDevice_Device(d)); }
uint32_t infergo_hw_vendor_id(const OrtEpDevice *d) { return api->HardwareDevice_VendorId(api->EpDevice_Device(d)); }
uint32_t infergo_hw_device_id(const OrtEpDevice *d) { return api->HardwareDevice_DeviceId(api->EpDevice_Device(d)); }
const char *infergo_hw_vendor(const OrtEpDevice *d) { return api->HardwareDevice_Vendor(api->EpDevice_Device(d)); }

size_t infergo_ep_kv(const OrtEpDevice *d, int which, const char *const **keys, const char *const **values) {
  const OrtKeyValuePairs *kv = NULL;
  switch (which) {
    case 0: kv = api->HardwareDevice_Metadata(api->EpDevice_Device(d)); break;
    case 1: kv = api->EpDevice_EpMetadata(d); break;
    default: kv = api->EpDevice_EpOptions(d); break;
  }
  size_t n = 0;
  *keys = NULL;
  *values = NULL;
  if (kv != NULL) api->GetKeyValuePairs(kv, keys, values, &n);
  return n;
}

OrtStatus *infergo_append_v2(OrtSessionOptions *opts, OrtEnv *env, const OrtEpDevice *dev,
                             const char *const *keys, const char *const *values, size_t n) {
  const OrtEpDevice *devs[1] = {dev};
  return api->SessionOptionsAppendExecutionProvider_V2(opts, env, devs, 1, keys, values, n);
}

OrtStatus *infergo_set_ep_policy(OrtSessionOptions *opts, int policy) {
  return api->SessionOptionsSetEpSelectionPolicy(opts, (OrtExecutionProviderDevicePolicy)policy);
}

OrtStatus *infergo_add_config_entry(OrtSessionOptions *opts, const char *key, const char *value) {
  return api->AddSessionConfigEntry(opts, key, value);
}

OrtStatus *infergo_get_config_entry(OrtSessionOptions *opts, const char *key, char *buf, size_t *len) {
  return api->GetSessionConfigEntry(opts, key, buf, len);
}

OrtStatus *infergo_enable_profiling(OrtSessionOptions *opts, const char *prefix) {
  return api->EnableProfiling(opts, prefix);
}
