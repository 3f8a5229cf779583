// msdi native layer, data-parallel part: thin handles over libtorch's own c10d.
//
//  - distInit: a c10d::TCPStore (rank 0 serves it at MASTER_ADDR:MASTER_PORT, every rank
//    connects) and, on it, a c10d::ProcessGroupGloo (CPU; its device is the interface named
//    by the caller or ProcessGroupGloo::createDefaultDevice()) or, in a CUDA build with
//    MSDI_HAVE_NCCL, a c10d::ProcessGroupNCCL. Both get the caller's timeout, so a collective
//    that a dead or stuck rank blocks fails instead of hanging.
//  - distAllreduce / distAllreduceGrads / distBroadcast work in place on lists of tensors:
//    the list is flattened into one buffer per dtype and device (one collective instead of
//    hundreds), reduced, and copied back. distAllreduceGrads takes parameters and reduces
//    their defined .grad (a parameter that took no part in the graph has none on every rank).
//  - Every collective is synchronous (Work::wait), as the training loop is.
//  - Built without c10d (a libtorch that lacks it, see scripts/libtorch-config.mjs), the same
//    entry points exist: distBackends() answers [] and the others throw.
//
// Tensors arrive as the addon's tensor handles (common.h's TensorBox); errors are thrown as
// "libtorch: ..." by the same GUARD as msdi.cc's.
#include "distributed.h"

#include "common.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#ifdef MSDI_HAVE_C10D
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef MSDI_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace {

#ifdef MSDI_HAVE_C10D

at::Tensor& TensorOf(Napi::Env env, Napi::Value v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(env, "libtorch: list element is not a tensor handle");
  auto* box = v.As<Napi::External<msdi::TensorBox>>().Data();
  if (!box || !box->t.defined()) throw Napi::Error::New(env, "libtorch: tensor used after dispose()");
  return box->t;
}

std::vector<at::Tensor> TensorList(const Napi::CallbackInfo& info, size_t i) {
  auto arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) out.push_back(TensorOf(info.Env(), arr.Get(k)));
  return out;
}

struct GroupBox {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0;
  int size = 1;
};

GroupBox* GroupOf(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal())
    throw Napi::TypeError::New(info.Env(), "libtorch: not a process group handle");
  auto* g = info[i].As<Napi::External<GroupBox>>().Data();
  if (!g->pg) throw Napi::Error::New(info.Env(), "libtorch: process group used after dispose()");
  return g;
}

enum class Coll { Allreduce, Broadcast };

// Runs one collective per (dtype, device) bucket of `ts`, flattened, then copies the result
// back into the tensors. op: sum|avg|max|min (avg = sum, then / size, floating types only).
void Flat(GroupBox* g, std::vector<at::Tensor>& ts, Coll coll, const std::string& op, int64_t root) {
  at::NoGradGuard ng;
  c10d::ReduceOp::RedOpType red = c10d::ReduceOp::SUM;
  if (op == "max") red = c10d::ReduceOp::MAX;
  else if (op == "min") red = c10d::ReduceOp::MIN;
  else if (op != "sum" && op != "avg") throw std::invalid_argument("unknown reduction " + op);
  std::vector<std::pair<at::TensorOptions, std::vector<size_t>>> buckets;
  for (size_t k = 0; k < ts.size(); ++k) {
    auto o = at::TensorOptions().dtype(ts[k].scalar_type()).device(ts[k].device());
    auto it = buckets.begin();
    for (; it != buckets.end(); ++it)
      if (it->first.dtype() == o.dtype() && it->first.device() == o.device()) break;
    if (it == buckets.end()) buckets.push_back({o, {k}});
    else it->second.push_back(k);
  }
  for (auto& [opts, idx] : buckets) {
    std::vector<at::Tensor> parts;
    parts.reserve(idx.size());
    for (auto k : idx) parts.push_back(ts[k].reshape(-1));
    std::vector<at::Tensor> flat{at::cat(parts)};
    c10::intrusive_ptr<c10d::Work> work;
    if (coll == Coll::Broadcast) {
      c10d::BroadcastOptions bo;
      bo.rootRank = root;
      work = g->pg->broadcast(flat, bo);
    } else {
      c10d::AllreduceOptions ao;
      ao.reduceOp = red;
      work = g->pg->allreduce(flat, ao);
    }
    work->wait();
    if (coll == Coll::Allreduce && op == "avg" && flat[0].is_floating_point()) flat[0].div_(g->size);
    int64_t off = 0;
    for (auto k : idx) {
      auto n = ts[k].numel();
      ts[k].copy_(flat[0].narrow(0, off, n).view(ts[k].sizes()));
      off += n;
    }
  }
}

// distInit(backend, masterAddr, masterPort, rank, world, timeoutMs, glooInterfaces[])
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  GUARD({
    auto backend = info[0].As<Napi::String>().Utf8Value();
    auto addr = info[1].As<Napi::String>().Utf8Value();
    auto port = static_cast<std::uint16_t>(info[2].As<Napi::Number>().Uint32Value());
    int rank = info[3].As<Napi::Number>().Int32Value();
    int world = info[4].As<Napi::Number>().Int32Value();
    auto timeout = std::chrono::milliseconds(info[5].As<Napi::Number>().Int64Value());
    auto ifaces = info[6].As<Napi::Array>();

    c10d::TCPStoreOptions so;
    so.port = port;
    so.isServer = rank == 0;
    so.numWorkers = static_cast<std::size_t>(world);
    so.waitWorkers = true;
    so.timeout = timeout;
    auto box = std::make_unique<GroupBox>();
    box->rank = rank;
    box->size = world;
    box->store = c10::make_intrusive<c10d::TCPStore>(addr, so);
    if (backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      for (uint32_t k = 0; k < ifaces.Length(); ++k)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifaces.Get(k).As<Napi::String>().Utf8Value()));
      if (opts->devices.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      box->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(box->store, rank, world, opts);
    }
#ifdef MSDI_HAVE_NCCL
    else if (backend == "nccl") {
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      box->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(box->store, rank, world, opts);
    }
#endif
    else {
      throw std::invalid_argument("backend " + backend + " is not built into this addon");
    }
    return Napi::External<GroupBox>::New(info.Env(), box.release(), [](Napi::Env, GroupBox* b) { delete b; });
  })
}

// distAllreduce(group, tensors[], op)
Napi::Value DistAllreduce(const Napi::CallbackInfo& info) {
  GUARD({
    auto* g = GroupOf(info, 0);
    auto ts = TensorList(info, 1);
    Flat(g, ts, Coll::Allreduce, info[2].As<Napi::String>().Utf8Value(), 0);
    return info.Env().Undefined();
  })
}

// distAllreduceGrads(group, params[]) -> number of gradients averaged
Napi::Value DistAllreduceGrads(const Napi::CallbackInfo& info) {
  GUARD({
    auto* g = GroupOf(info, 0);
    std::vector<at::Tensor> grads;
    for (auto& p : TensorList(info, 1)) {
      const auto& gr = p.grad();
      if (gr.defined()) grads.push_back(gr);
    }
    Flat(g, grads, Coll::Allreduce, "avg", 0);
    return Napi::Number::New(info.Env(), static_cast<double>(grads.size()));
  })
}

// distBroadcast(group, tensors[], root)
Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  GUARD({
    auto* g = GroupOf(info, 0);
    auto ts = TensorList(info, 1);
    Flat(g, ts, Coll::Broadcast, "sum", info[2].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  })
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  GUARD({
    GroupOf(info, 0)->pg->barrier()->wait();
    return info.Env().Undefined();
  })
}

Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
  GUARD({
    if (info.Length() > 0 && info[0].IsExternal()) {
      auto* g = info[0].As<Napi::External<GroupBox>>().Data();
      g->pg.reset();
      g->store.reset();
    }
    return info.Env().Undefined();
  })
}

Napi::Value DistBackends(const Napi::CallbackInfo& info) {
  auto arr = Napi::Array::New(info.Env());
  uint32_t n = 0;
  arr.Set(n++, "gloo");
#ifdef MSDI_HAVE_NCCL
  arr.Set(n++, "nccl");
#endif
  return arr;
}

#else  // no c10d in this libtorch

Napi::Value Unavailable(const Napi::CallbackInfo& info) {
  throw Napi::Error::New(info.Env(), "libtorch: distributed training needs a libtorch with c10d (gloo)");
}
Napi::Value DistDestroy(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
Napi::Value DistBackends(const Napi::CallbackInfo& info) { return Napi::Array::New(info.Env()); }
#define DistInit Unavailable
#define DistAllreduce Unavailable
#define DistAllreduceGrads Unavailable
#define DistBroadcast Unavailable
#define DistBarrier Unavailable

#endif

}  // namespace

void RegisterDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("distBackends", Napi::Function::New(env, DistBackends, "distBackends"));
  exports.Set("distInit", Napi::Function::New(env, DistInit, "distInit"));
  exports.Set("distAllreduce", Napi::Function::New(env, DistAllreduce, "distAllreduce"));
  exports.Set("distAllreduceGrads", Napi::Function::New(env, DistAllreduceGrads, "distAllreduceGrads"));
  exports.Set("distBroadcast", Napi::Function::New(env, DistBroadcast, "distBroadcast"));
  exports.Set("distBarrier", Napi::Function::New(env, DistBarrier, "distBarrier"));
  exports.Set("distDestroy", Napi::Function::New(env, DistDestroy, "distDestroy"));
}
