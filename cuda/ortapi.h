// The C side of package cuda's shim over the ONNX Runtime C API. Every function takes the
// OrtApi table that infergo_ort_init found in the already-loaded core library; nothing here
// links against ONNX Runtime (it is dlopened by onnxruntime_go), so the binary needs only libc
// and libdl.
#ifndef INFERGO_CUDA_ORTAPI_H
#define INFERGO_CUDA_ORTAPI_H

#include <stddef.h>
#include <stdint.h>
#include "onnxruntime_c_api.h"

// infergo_ort_init finds OrtGetApiBase in the core library at path, which must already be
// loaded (RTLD_NOLOAD), and keeps the OrtApi table. It returns NULL or a static error string.
// The library stays referenced for the life of the process so the table never dangles.
const char *infergo_ort_init(const char *path);

// infergo_ort_core_path returns the file the loaded core library came from (dladdr), or NULL.
const char *infergo_ort_core_path(void);

// infergo_dlopen_check dlopens name with RTLD_LAZY|RTLD_LOCAL and closes it again; it returns
// NULL on success or dlerror()'s text (copied into buf).
const char *infergo_dlopen_check(const char *name, char *buf, size_t len);

const char *infergo_status_message(OrtStatus *s);
void infergo_release_status(OrtStatus *s);

OrtStatus *infergo_create_env(OrtEnv **out);
void infergo_release_env(OrtEnv *env);

OrtStatus *infergo_get_ep_devices(const OrtEnv *env, const OrtEpDevice *const **out, size_t *n);
const char *infergo_ep_name(const OrtEpDevice *d);
const char *infergo_ep_vendor(const OrtEpDevice *d);
int infergo_hw_type(const OrtEpDevice *d);
uint32_t infergo_hw_vendor_id(const OrtEpDevice *d);
uint32_t infergo_hw_device_id(const OrtEpDevice *d);
const char *infergo_hw_vendor(const OrtEpDevice *d);
// which: 0 hardware metadata, 1 EP metadata, 2 EP options. Returns the entry count.
size_t infergo_ep_kv(const OrtEpDevice *d, int which, const char *const **keys, const char *const **values);

OrtStatus *infergo_append_v2(OrtSessionOptions *opts, OrtEnv *env, const OrtEpDevice *dev,
                             const char *const *keys, const char *const *values, size_t n);
OrtStatus *infergo_set_ep_policy(OrtSessionOptions *opts, int policy);
OrtStatus *infergo_add_config_entry(OrtSessionOptions *opts, const char *key, const char *value);
OrtStatus *infergo_enable_profiling(OrtSessionOptions *opts, const char *prefix);
OrtStatus *infergo_get_config_entry(OrtSessionOptions *opts, const char *key, char *buf, size_t *len);

#endif
