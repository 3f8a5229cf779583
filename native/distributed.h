// msdi native layer, data-parallel part: libtorch's own c10d process groups (TCPStore
// rendezvous, ProcessGroupGloo on CPU, ProcessGroupNCCL on a CUDA build) behind the same
// flat, handle-based surface as msdi.cc. See distributed.cc.
#pragma once

#include <napi.h>

// Adds the dist* entry points to the addon's exports (called once from msdi.cc's Init).
void RegisterDistributed(Napi::Env env, Napi::Object exports);
