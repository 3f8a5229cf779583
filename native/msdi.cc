// msdi native layer: a flat, handle-based surface over libtorch (ATen + autograd + optim).
//
// Design (after tch-rs's torch_api and tfjs-node's binding):
//  - A tensor crosses into JavaScript as an External wrapping a TensorBox. `free` resets the
//    box at once (the storage goes back to libtorch); the box itself is deleted when the
//    External is collected, so a late free after GC or a double free can never crash.
//  - Every entry point runs inside GUARD, which turns a c10::Error or std::exception into a
//    JavaScript Error whose message starts "libtorch: ". No C++ exception escapes to Node.
//  - Argument validation lives in TypeScript (src/engine); this file trusts shapes and types
//    but still never dereferences a handle it cannot recognise.
#include <napi.h>

#include "common.h"
#include "distributed.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#ifndef MSDI_NO_PROFILER
#include <torch/csrc/autograd/profiler_legacy.h>
#endif
#include <torch/types.h>
#include <torch/optim/adam.h>
#include <torch/version.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <type_traits>
#include <unordered_set>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using msdi::TensorBox;

struct AdamBox {
  std::unique_ptr<torch::optim::Adam> opt;
  std::vector<at::Tensor> params;
};

// ---------------------------------------------------------------- argument helpers

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  auto* box = new TensorBox{std::move(t)};
  return Napi::External<TensorBox>::New(env, box, [](Napi::Env, TensorBox* b) { delete b; });
}

at::Tensor& T(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal())
    throw Napi::TypeError::New(info.Env(), "libtorch: argument " + std::to_string(i) + " is not a tensor handle");
  auto* box = info[i].As<Napi::External<TensorBox>>().Data();
  if (!box->t.defined()) throw Napi::Error::New(info.Env(), "libtorch: tensor used after dispose()");
  return box->t;
}

c10::optional<at::Tensor> OptT(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return c10::nullopt;
  return T(info, i);
}

int64_t I(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int64Value(); }
double D(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }
bool B(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Boolean>().Value(); }
std::string S(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::String>().Utf8Value(); }

std::vector<int64_t> Ints(const Napi::CallbackInfo& info, size_t i) {
  auto arr = info[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) out[k] = arr.Get(k).As<Napi::Number>().Int64Value();
  return out;
}

std::vector<at::Tensor> Tensors(const Napi::CallbackInfo& info, size_t i) {
  auto arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    auto v = arr.Get(k);
    if (!v.IsExternal()) throw Napi::TypeError::New(info.Env(), "libtorch: list element is not a tensor handle");
    auto* box = v.As<Napi::External<TensorBox>>().Data();
    if (!box->t.defined()) throw Napi::Error::New(info.Env(), "libtorch: tensor used after dispose()");
    out.push_back(box->t);
  }
  return out;
}

Napi::Array WrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t k = 0; k < ts.size(); ++k) arr.Set(static_cast<uint32_t>(k), Wrap(env, ts[k]));
  return arr;
}

at::ScalarType Dtype(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float64") return at::kDouble;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  throw std::invalid_argument("unknown dtype " + s);
}

const char* DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "other";
  }
}

at::Device Dev(const std::string& s) { return at::Device(s); }

at::TensorOptions Opts(const Napi::CallbackInfo& info, size_t dtypeIdx, size_t devIdx) {
  return at::TensorOptions().dtype(Dtype(S(info, dtypeIdx))).device(Dev(S(info, devIdx)));
}

// A scalar operand may be a number or a tensor: binary ops accept both.
bool IsNum(const Napi::CallbackInfo& info, size_t i) { return info[i].IsNumber(); }

// ---------------------------------------------------------------- creation and data

// fromBuffer(typedArray, shape, dtype, device)
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  GUARD({
    auto ta = info[0].As<Napi::TypedArray>();
    auto shape = Ints(info, 1);
    auto dtype = Dtype(S(info, 2));
    auto dev = Dev(S(info, 3));
    // For a GPU the bytes are staged in pinned memory and copied without waiting: a copy from
    // pageable memory makes the host wait until the GPU has finished all the work queued before
    // it, so that every training batch left the GPU idle while the host copied the next one.
    // (The pinned block is reused only once its copy is done: libtorch's caching host allocator.)
    // Where pinned memory cannot be had (a locked-memory limit), pageable memory does, waiting.
    at::Tensor staged;
    if (dev.is_cuda()) {
      try {
        staged = at::empty(shape, at::TensorOptions().dtype(dtype).pinned_memory(true));
      } catch (const c10::Error&) {
      }
    }
    if (!staged.defined()) staged = at::empty(shape, at::TensorOptions().dtype(dtype));
    size_t nbytes = staged.numel() * staged.element_size();
    if (nbytes != ta.ByteLength())
      throw std::invalid_argument("buffer holds " + std::to_string(ta.ByteLength()) + " bytes, shape needs " +
                                  std::to_string(nbytes));
    auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    if (nbytes) std::memcpy(staged.data_ptr(), src, nbytes);
    if (dev.is_cpu()) return Wrap(info.Env(), staged);
    return Wrap(info.Env(), staged.to(at::TensorOptions().device(dev), /*non_blocking=*/staged.is_pinned()));
  })
}

// toBuffer(t) -> ArrayBuffer with the contiguous CPU bytes
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  GUARD({
    auto t = T(info, 0).detach().to(at::kCPU).contiguous();
    size_t nbytes = t.numel() * t.element_size();
    auto ab = Napi::ArrayBuffer::New(info.Env(), nbytes);
    if (nbytes) std::memcpy(ab.Data(), t.data_ptr(), nbytes);
    return ab;
  })
}

Napi::Value Meta(const Napi::CallbackInfo& info) {
  GUARD({
    auto& t = T(info, 0);
    auto env = info.Env();
    auto o = Napi::Object::New(env);
    auto sizes = t.sizes();
    auto shape = Napi::Array::New(env, sizes.size());
    for (size_t k = 0; k < sizes.size(); ++k) shape.Set(static_cast<uint32_t>(k), Napi::Number::New(env, sizes[k]));
    o.Set("shape", shape);
    o.Set("dtype", DtypeName(t.scalar_type()));
    o.Set("device", t.device().str());
    return o;
  })
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsExternal()) info[0].As<Napi::External<TensorBox>>().Data()->t.reset();
  return info.Env().Undefined();
}

Napi::Value Item(const Napi::CallbackInfo& info) {
  GUARD({ return Napi::Number::New(info.Env(), T(info, 0).item<double>()); })
}

#define CREATE(name, expr)                                      \
  Napi::Value name(const Napi::CallbackInfo& info) {            \
    GUARD({                                                     \
      auto shape = Ints(info, 0);                               \
      auto opts = Opts(info, 1, 2);                             \
      return Wrap(info.Env(), expr);                            \
    })                                                          \
  }
CREATE(Zeros, at::zeros(shape, opts))
CREATE(Ones, at::ones(shape, opts))
CREATE(Randn, at::randn(shape, opts))
CREATE(Rand, at::rand(shape, opts))
CREATE(Empty, at::empty(shape, opts))

Napi::Value Full(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::full(Ints(info, 0), D(info, 3), Opts(info, 1, 2))); })
}

Napi::Value Arange(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::arange(D(info, 0), D(info, 1), D(info, 2), Opts(info, 3, 4))); })
}

Napi::Value To(const Napi::CallbackInfo& info) {
  GUARD({
    auto& t = T(info, 0);
    auto opts = t.options();
    if (!info[1].IsNull() && !info[1].IsUndefined()) opts = opts.dtype(Dtype(S(info, 1)));
    if (!info[2].IsNull() && !info[2].IsUndefined()) opts = opts.device(Dev(S(info, 2)));
    return Wrap(info.Env(), t.to(opts));
  })
}

// ---------------------------------------------------------------- elementwise

#define UNARY(name, expr)                           \
  Napi::Value name(const Napi::CallbackInfo& info) { \
    GUARD({                                         \
      auto& a = T(info, 0);                         \
      return Wrap(info.Env(), expr);                \
    })                                              \
  }
UNARY(Neg, at::neg(a))
UNARY(Abs, at::abs(a))
UNARY(Log, at::log(a))
UNARY(Exp, at::exp(a))
UNARY(Sqrt, at::sqrt(a))
UNARY(Rsqrt, at::rsqrt(a))
UNARY(Sigmoid, at::sigmoid(a))
UNARY(Tanh, at::tanh(a))
UNARY(Relu, at::relu(a))
UNARY(Sign, at::sign(a))
UNARY(Round, at::round(a))
UNARY(Floor, at::floor(a))
UNARY(Clone, a.clone())
UNARY(Contiguous, a.contiguous())
UNARY(Detach, a.detach())
UNARY(IsFinite, at::isfinite(a).all())

Napi::Value LeakyRelu(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::leaky_relu(T(info, 0), D(info, 1))); })
}

Napi::Value Clamp(const Napi::CallbackInfo& info) {
  GUARD({
    c10::optional<at::Scalar> lo, hi;
    if (info[1].IsNumber()) lo = D(info, 1);
    if (info[2].IsNumber()) hi = D(info, 2);
    return Wrap(info.Env(), at::clamp(T(info, 0), lo, hi));
  })
}

Napi::Value Pow(const Napi::CallbackInfo& info) {
  GUARD({
    auto& a = T(info, 0);
    return Wrap(info.Env(), IsNum(info, 1) ? at::pow(a, D(info, 1)) : at::pow(a, T(info, 1)));
  })
}

// Binary ops with broadcasting; the right operand may be a number.
#define BINARY(name, fn)                                                        \
  Napi::Value name(const Napi::CallbackInfo& info) {                            \
    GUARD({                                                                     \
      auto& a = T(info, 0);                                                     \
      if (IsNum(info, 1)) return Wrap(info.Env(), fn(a, at::Scalar(D(info, 1)))); \
      return Wrap(info.Env(), fn(a, T(info, 1)));                               \
    })                                                                          \
  }
BINARY(Add, at::add)
BINARY(Sub, at::sub)
BINARY(Mul, at::mul)
BINARY(Div, at::div)
BINARY(Eq, at::eq)
BINARY(Gt, at::gt)
BINARY(Lt, at::lt)

Napi::Value Maximum(const Napi::CallbackInfo& info) {
  GUARD({
    auto& a = T(info, 0);
    return Wrap(info.Env(), IsNum(info, 1) ? at::clamp_min(a, D(info, 1)) : at::maximum(a, T(info, 1)));
  })
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::matmul(T(info, 0), T(info, 1))); })
}

// a + b * s, fused (used by optimisers, blending and residual adds)
Napi::Value AddScaled(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::add(T(info, 0), T(info, 1), D(info, 2))); })
}

Napi::Value Where(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::where(T(info, 0), T(info, 1), T(info, 2))); })
}

// ---------------------------------------------------------------- reductions

// reduce(t, kind, dims|null, keepdim)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  GUARD({
    auto& a = T(info, 0);
    auto kind = S(info, 1);
    bool all = info[2].IsNull() || info[2].IsUndefined();
    bool keep = B(info, 3);
    at::Tensor r;
    if (kind == "sum") r = all ? a.sum() : a.sum(Ints(info, 2), keep);
    else if (kind == "mean") r = all ? a.mean() : a.mean(Ints(info, 2), keep);
    else if (kind == "max") r = all ? a.max() : a.amax(Ints(info, 2), keep);
    else if (kind == "min") r = all ? a.min() : a.amin(Ints(info, 2), keep);
    else if (kind == "var") r = all ? a.var(false) : a.var(Ints(info, 2), false, keep);
    else throw std::invalid_argument("unknown reduction " + kind);
    return Wrap(info.Env(), r);
  })
}

Napi::Value Argmax(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::argmax(T(info, 0), I(info, 1), B(info, 2))); })
}

// ---------------------------------------------------------------- shape

Napi::Value Reshape(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), T(info, 0).reshape(Ints(info, 1))); })
}
Napi::Value Permute(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), T(info, 0).permute(Ints(info, 1))); })
}
Napi::Value Expand(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), T(info, 0).expand(Ints(info, 1))); })
}
Napi::Value Flip(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), T(info, 0).flip(Ints(info, 1))); })
}
Napi::Value Rot90(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::rot90(T(info, 0), I(info, 1), Ints(info, 2))); })
}
// slice(t, dim, start, end, step)
Napi::Value Slice(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), T(info, 0).slice(I(info, 1), I(info, 2), I(info, 3), I(info, 4))); })
}
Napi::Value Chunk(const Napi::CallbackInfo& info) {
  GUARD({ return WrapList(info.Env(), T(info, 0).chunk(I(info, 1), I(info, 2))); })
}
Napi::Value Cat(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::cat(Tensors(info, 0), I(info, 1))); })
}
Napi::Value Stack(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::stack(Tensors(info, 0), I(info, 1))); })
}
Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  GUARD({ return Wrap(info.Env(), at::index_select(T(info, 0), I(info, 1), T(info, 2))); })
}

// ---------------------------------------------------------------- neural network ops

// conv2d(x, w, b|null, stride[2], padding[2], dilation[2], groups)
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  GUARD({
    return Wrap(info.Env(), at::conv2d(T(info, 0), T(info, 1), OptT(info, 2), Ints(info, 3), Ints(info, 4),
                                       Ints(info, 5), I(info, 6)));
  })
}

// convTranspose2d(x, w, b|null, stride, padding, outputPadding, groups, dilation)
Napi::Value ConvTranspose2d(const Napi::CallbackInfo& info) {
  GUARD({
    return Wrap(info.Env(), at::conv_transpose2d(T(info, 0), T(info, 1), OptT(info, 2), Ints(info, 3), Ints(info, 4),
                                                 Ints(info, 5), I(info, 6), Ints(info, 7)));
  })
}

// contiguousAs(t, channelsLast): a dense copy in NCHW or NHWC memory order (no copy when it
// already is). Convolutions on NHWC inputs and weights skip oneDNN's per-call reorders.
Napi::Value ContiguousAs(const Napi::CallbackInfo& info) {
  GUARD({
    auto format = B(info, 1) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    return Wrap(info.Env(), T(info, 0).contiguous(format));
  })
}

// setChannelsLast(t): re-lays a 4-D tensor (a parameter too) out NHWC in place: same handle,
// same autograd identity, new storage. Optimiser state made from it later follows its layout.
Napi::Value SetChannelsLast(const Napi::CallbackInfo& info) {
  GUARD({
    auto& t = T(info, 0);
    if (t.dim() == 4) t.set_data(t.detach().contiguous(at::MemoryFormat::ChannelsLast));
    return info.Env().Undefined();
  })
}

// moveTo(t, device): moves a tensor (a parameter too) to another device in place: same handle,
// same autograd identity and requires_grad, new storage; its memory layout is kept.
Napi::Value MoveTo(const Napi::CallbackInfo& info) {
  GUARD({
    auto& t = T(info, 0);
    auto dev = Dev(S(info, 1));
    if (t.device() != dev) t.set_data(t.detach().to(dev));
    return info.Env().Undefined();
  })
}

Napi::Value IsChannelsLast(const Napi::CallbackInfo& info) {
  GUARD({
    auto& t = T(info, 0);
    return Napi::Boolean::New(info.Env(), t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                                              !t.is_contiguous());
  })
}

// convTranspose2x2(x, w[Cin, Cout, 2, 2], b|null): ConvTranspose2d with kernel 2, stride 2,
// no padding. Every output pixel takes exactly one input pixel, so it is a 1x1 convolution to
// Cout x 2 x 2 channels followed by a pixel shuffle. libtorch 1.13 sends transposed
// convolutions to an im2col + BLAS path on CPU (Debian's reference BLAS: single-threaded and
// slow); the 1x1 convolution runs in oneDNN. NHWC in, NHWC out. Differentiable (ATen ops).
Napi::Value ConvTranspose2x2(const Napi::CallbackInfo& info) {
  GUARD({
    auto& x = T(info, 0);
    auto& w = T(info, 1);
    auto b = OptT(info, 2);
    const int64_t n = x.size(0), cin = x.size(1), h = x.size(2), wd = x.size(3), cout = w.size(1);
    bool nhwc = x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
    auto w1 = w.permute({1, 2, 3, 0}).reshape({cout * 4, cin, 1, 1});
    if (nhwc) w1 = w1.contiguous(at::MemoryFormat::ChannelsLast);
    auto y = at::conv2d(x, w1);  // [n, cout*4, h, w]; channel = co*4 + i*2 + j
    at::Tensor out;
    if (nhwc) {
      out = y.permute({0, 2, 3, 1}).reshape({n, h, wd, cout, 2, 2}).permute({0, 1, 4, 2, 5, 3})
                .reshape({n, 2 * h, 2 * wd, cout}).permute({0, 3, 1, 2});
    } else {
      out = at::pixel_shuffle(y, 2);
    }
    if (b.has_value()) out = out + b->view({1, cout, 1, 1});
    return Wrap(info.Env(), out);
  })
}

// instanceNorm(x, w|null, b|null, eps)
// An NHWC input (a channel slice of one, too) is normalised with elementwise ops that keep
// its layout: at::instance_norm would make it NCHW and the next convolution would copy back.
Napi::Value InstanceNorm(const Napi::CallbackInfo& info) {
  GUARD({
    auto& x = T(info, 0);
    if (x.dim() == 4 && x.stride(1) == 1 && x.size(1) > 1) {
      auto [var, mean] = at::var_mean(x, {2, 3}, /*unbiased=*/false, /*keepdim=*/true);
      auto y = (x - mean) * at::rsqrt(var + D(info, 3));
      auto w = OptT(info, 1);
      auto b = OptT(info, 2);
      // Under autocast x is bfloat16 while the affine parameters stay float32: apply them in x's
      // dtype, as torch's batch and instance norms do on a GPU, or the output would be promoted to
      // float32 and the next convolution cast it back (a copy of the activation each way, forward
      // and backward).
      if (w.has_value() && w->scalar_type() != x.scalar_type()) w = w->to(x.scalar_type());
      if (b.has_value() && b->scalar_type() != x.scalar_type()) b = b->to(x.scalar_type());
      if (w.has_value()) y = y * w->view({1, -1, 1, 1});
      if (b.has_value()) y = y + b->view({1, -1, 1, 1});
      return Wrap(info.Env(), y);
    }
    return Wrap(info.Env(), at::instance_norm(T(info, 0), OptT(info, 1), OptT(info, 2), c10::nullopt, c10::nullopt,
                                              true, 0.1, D(info, 3), at::globalContext().userEnabledCuDNN()));
  })
}

// batchNorm(x, w|null, b|null, runningMean|null, runningVar|null, training, momentum, eps)
// In training mode libtorch updates the running statistics in place, as torch does.
Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  GUARD({
    return Wrap(info.Env(), at::batch_norm(T(info, 0), OptT(info, 1), OptT(info, 2), OptT(info, 3), OptT(info, 4),
                                           B(info, 5), D(info, 6), D(info, 7), at::globalContext().userEnabledCuDNN()));
  })
}

// pad(x, pads [left, right, top, bottom], mode: constant|reflect|replicate, value)
Napi::Value Pad(const Napi::CallbackInfo& info) {
  GUARD({
    auto& x = T(info, 0);
    auto pads = Ints(info, 1);
    auto mode = S(info, 2);
    at::Tensor r;
    if (mode == "reflect") r = at::reflection_pad2d(x, pads);
    else if (mode == "replicate") r = at::replication_pad2d(x, pads);
    else if (mode == "constant") r = at::constant_pad_nd(x, pads, D(info, 3));
    else throw std::invalid_argument("unknown pad mode " + mode);
    return Wrap(info.Env(), r);
  })
}

// interpolate(x, size[2], mode: nearest|bilinear) — align_corners false, as torch's default.
Napi::Value Interpolate(const Napi::CallbackInfo& info) {
  GUARD({
    auto& x = T(info, 0);
    auto size = Ints(info, 1);
    auto mode = S(info, 2);
    at::Tensor r;
    if (mode == "nearest") r = at::upsample_nearest2d(x, size, c10::nullopt, c10::nullopt);
    else if (mode == "bilinear") r = at::upsample_bilinear2d(x, size, false, c10::nullopt, c10::nullopt);
    else if (mode == "bicubic") r = at::upsample_bicubic2d(x, size, false, c10::nullopt, c10::nullopt);
    else throw std::invalid_argument("unknown interpolation mode " + mode);
    return Wrap(info.Env(), r);
  })
}

// avgPool2d(x, kernel, stride, padding, ceilMode, countIncludePad)
Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  GUARD({
    return Wrap(info.Env(), at::avg_pool2d(T(info, 0), Ints(info, 1), Ints(info, 2), Ints(info, 3), B(info, 4),
                                           B(info, 5)));
  })
}

// normalize(x, p, dim, eps) as torch.nn.functional.normalize
Napi::Value Normalize(const Napi::CallbackInfo& info) {
  GUARD({
    auto& x = T(info, 0);
    auto n = x.norm(D(info, 1), I(info, 2), true).clamp_min(D(info, 3)).expand_as(x);
    return Wrap(info.Env(), x / n);
  })
}

// gridSample(x, grid, mode, padding) — bilinear/nearest sampling, align_corners false
Napi::Value GridSample(const Napi::CallbackInfo& info) {
  GUARD({
    auto mode = S(info, 2) == "nearest" ? 1 : 0;
    auto pad = S(info, 3);
    int64_t padMode = pad == "border" ? 1 : pad == "reflection" ? 2 : 0;
    return Wrap(info.Env(), at::grid_sampler(T(info, 0), T(info, 1), mode, padMode, false));
  })
}

// ---------------------------------------------------------------- in-place (no autograd)

// copy_(dst, src): used for spectral-norm vectors, EMA and loading weights.
Napi::Value CopyInto(const Napi::CallbackInfo& info) {
  GUARD({
    at::NoGradGuard ng;
    T(info, 0).copy_(T(info, 1));
    return info.Env().Undefined();
  })
}

// ---------------------------------------------------------------- autograd

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  GUARD({
    T(info, 0).requires_grad_(B(info, 1));
    return info.Env().Undefined();
  })
}
Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  GUARD({ return Napi::Boolean::New(info.Env(), T(info, 0).requires_grad()); })
}
Napi::Value Backward(const Napi::CallbackInfo& info) {
  GUARD({
    auto& t = T(info, 0);
    auto g = OptT(info, 1);
    t.backward(g.has_value() ? *g : at::Tensor(), /*retain_graph=*/c10::nullopt, /*create_graph=*/false);
    return info.Env().Undefined();
  })
}
Napi::Value Grad(const Napi::CallbackInfo& info) {
  GUARD({
    auto g = T(info, 0).grad();
    if (!g.defined()) return info.Env().Null();
    return Wrap(info.Env(), g);
  })
}
Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
  GUARD({
    T(info, 0).mutable_grad().reset();
    return info.Env().Undefined();
  })
}
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  GUARD({
    bool prev = at::GradMode::is_enabled();
    at::GradMode::set_enabled(B(info, 0));
    return Napi::Boolean::New(info.Env(), prev);
  })
}

// Inference mode is an RAII guard in libtorch; JavaScript enters and leaves it in strict
// LIFO order, so the guards live on a stack here, one stack per thread: a guard saves and
// restores its own thread's grad mode and dispatch keys (autocast's among them), so a stack
// shared by two JavaScript threads (the server's model threads, say) popped one thread's guard
// on the other and switched modes under it (two servers' model threads then failed requests).
thread_local std::vector<std::unique_ptr<c10::InferenceMode>> g_inference;
Napi::Value EnterInference(const Napi::CallbackInfo& info) {
  GUARD({
    g_inference.push_back(std::make_unique<c10::InferenceMode>());
    return info.Env().Undefined();
  })
}
Napi::Value ExitInference(const Napi::CallbackInfo& info) {
  GUARD({
    if (!g_inference.empty()) g_inference.pop_back();
    return info.Env().Undefined();
  })
}
Napi::Value IsInference(const Napi::CallbackInfo& info) {
  GUARD({ return Napi::Boolean::New(info.Env(), T(info, 0).is_inference()); })
}

// ---------------------------------------------------------------- optimiser

// The key under which libtorch's optimisers file a parameter's state: the TensorImpl's address
// printed as text (libtorch 1.x) or the address itself (2.x); the map's key type says which.
using StateMap = std::decay_t<decltype(std::declval<torch::optim::Adam&>().state())>;
template <typename Key>
Key KeyOf(const c10::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;  // what c10::guts::to_string did
    os << static_cast<const void*>(impl);
    return os.str();
  } else {
    return static_cast<Key>(const_cast<c10::TensorImpl*>(impl));
  }
}
StateMap::key_type StateKey(const at::Tensor& p) { return KeyOf<StateMap::key_type>(p.unsafeGetTensorImpl()); }

AdamBox* AdamOf(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsExternal()) throw Napi::TypeError::New(info.Env(), "libtorch: not an optimizer handle");
  auto* b = info[i].As<Napi::External<AdamBox>>().Data();
  if (!b->opt) throw Napi::Error::New(info.Env(), "libtorch: optimizer used after dispose()");
  return b;
}

// adamNew(params[], lr, beta1, beta2, eps, weightDecay)
Napi::Value AdamNew(const Napi::CallbackInfo& info) {
  GUARD({
    auto params = Tensors(info, 0);
    // adamStep updates all parameters at once: a parameter listed twice would be updated twice
    // per operation rather than step after step, so it is refused.
    std::unordered_set<const void*> seen;
    for (size_t k = 0; k < params.size(); ++k) {
      if (!seen.insert(params[k].unsafeGetTensorImpl()).second) {
        throw std::invalid_argument("Adam: parameter " + std::to_string(k) + " is listed twice");
      }
    }
    auto opts = torch::optim::AdamOptions(D(info, 1)).betas({D(info, 2), D(info, 3)}).eps(D(info, 4)).weight_decay(D(info, 5));
    auto* box = new AdamBox{std::make_unique<torch::optim::Adam>(params, opts), params};
    return Napi::External<AdamBox>::New(info.Env(), box, [](Napi::Env, AdamBox* b) { delete b; });
  })
}
// adamStep(opt): one Adam step over every parameter with a gradient, as torch::optim::Adam's
// step() computes it (the same operations in the same order, so the same numbers), but with
// the multi-tensor (_foreach) operations: on a GPU each is a few kernels for all parameters
// instead of one per parameter, where a small network's ~400 parameters made the optimiser
// thousands of kernel launches a step. The state stays in the torch::optim::Adam object, so
// adamGetState / adamSetState and the learning rate work on it as before.
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  GUARD({
    auto* b = AdamOf(info, 0);
    torch::NoGradGuard no_grad;
    auto& o = static_cast<torch::optim::AdamOptions&>(b->opt->param_groups().at(0).options());
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    std::vector<at::Tensor> ps, gs, ms, vs;
    std::vector<at::Scalar> bc2Sqrt, negStepSize;
    auto& state = b->opt->state();
    for (auto& p : b->params) {
      if (!p.grad().defined()) continue;
      auto& slot = state[StateKey(p)]; // empty for a parameter's first step
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& s = static_cast<torch::optim::AdamParamState&>(*slot);
      s.step(s.step() + 1);
      bc2Sqrt.emplace_back(std::sqrt(1 - std::pow(beta2, s.step())));
      negStepSize.emplace_back(-(o.lr() / (1 - std::pow(beta1, s.step()))));
      ps.push_back(p);
      gs.push_back(o.weight_decay() != 0 ? p.grad().add(p, o.weight_decay()) : p.grad());
      ms.push_back(s.exp_avg());
      vs.push_back(s.exp_avg_sq());
    }
    if (!ps.empty()) {
      at::_foreach_mul_(ms, beta1);
      at::_foreach_add_(ms, gs, 1 - beta1);
      at::_foreach_mul_(vs, beta2);
      at::_foreach_addcmul_(vs, gs, gs, 1 - beta2);
      auto denom = at::_foreach_sqrt(vs);
      at::_foreach_div_(denom, bc2Sqrt);
      at::_foreach_add_(denom, o.eps());
      at::_foreach_addcdiv_(ps, ms, denom, negStepSize);
    }
    return info.Env().Undefined();
  })
}
Napi::Value AdamSetLr(const Napi::CallbackInfo& info) {
  GUARD({
    for (auto& g : AdamOf(info, 0)->opt->param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(D(info, 1));
    return info.Env().Undefined();
  })
}
Napi::Value AdamZeroGrad(const Napi::CallbackInfo& info) {
  GUARD({
    for (auto& p : AdamOf(info, 0)->params) p.mutable_grad().reset();
    return info.Env().Undefined();
  })
}
Napi::Value AdamFree(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal()) {
    auto* b = info[0].As<Napi::External<AdamBox>>().Data();
    b->opt.reset();
    b->params.clear();
  }
  return info.Env().Undefined();
}
// adamGetState(opt) -> [{step, expAvg, expAvgSq} | null] in parameter order
Napi::Value AdamGetState(const Napi::CallbackInfo& info) {
  GUARD({
    auto* b = AdamOf(info, 0);
    auto env = info.Env();
    auto& state = b->opt->state();
    auto arr = Napi::Array::New(env, b->params.size());
    for (size_t k = 0; k < b->params.size(); ++k) {
      auto it = state.find(StateKey(b->params[k]));
      if (it == state.end()) {
        arr.Set(static_cast<uint32_t>(k), env.Null());
        continue;
      }
      auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
      auto o = Napi::Object::New(env);
      o.Set("step", Napi::Number::New(env, static_cast<double>(s.step())));
      o.Set("expAvg", Wrap(env, s.exp_avg().clone()));
      o.Set("expAvgSq", Wrap(env, s.exp_avg_sq().clone()));
      arr.Set(static_cast<uint32_t>(k), o);
    }
    return arr;
  })
}
// adamSetState(opt, index, step, expAvg, expAvgSq)
Napi::Value AdamSetState(const Napi::CallbackInfo& info) {
  GUARD({
    auto* b = AdamOf(info, 0);
    auto k = static_cast<size_t>(I(info, 1));
    if (k >= b->params.size()) throw std::out_of_range("parameter index out of range");
    auto s = std::make_unique<torch::optim::AdamParamState>();
    s->step(I(info, 2));
    // Saved state comes from the CPU; it lives where its parameter lives.
    auto dev = b->params[k].device();
    s->exp_avg(T(info, 3).to(dev).clone());
    s->exp_avg_sq(T(info, 4).to(dev).clone());
    b->opt->state()[StateKey(b->params[k])] = std::move(s);
    return info.Env().Undefined();
  })
}

// clipGradNorm(params[], maxNorm) -> the total norm before clipping, as a 0-dim float32 tensor
// on the gradients' device, computed without reading anything back to the host: a training step
// on a GPU queues its work and goes on (the trainer reads the norms later, with the losses). The
// numbers of torch::nn::utils::clip_grad_norm_: each gradient's 2-norm (one multi-tensor
// operation), the 2-norm of those, then every gradient times min(1, maxNorm / (norm + 1e-6)) in
// float32 - a multiplication by exactly 1 where no clipping is due, which changes no bit - and no
// multiplication at all when maxNorm is infinite (a run that only logs the norm).
Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
  GUARD({
    std::vector<at::Tensor> grads;
    auto params = Tensors(info, 0);
    for (auto& p : params) {
      if (p.grad().defined()) grads.push_back(p.grad());
    }
    if (grads.empty()) {
      // on the parameters' device, beside the losses it is logged with
      auto opts = at::TensorOptions().dtype(at::kFloat);
      return Wrap(info.Env(), at::zeros({}, params.empty() ? opts : opts.device(params[0].device())));
    }
    torch::NoGradGuard no_grad;
    auto norms = at::_foreach_norm(grads, 2);
    auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
    const double maxNorm = D(info, 1);
    if (std::isfinite(maxNorm)) {
      auto coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
      for (auto& g : grads) g.mul_(coef);
    }
    return Wrap(info.Env(), total);
  })
}

// ---------------------------------------------------------------- runtime

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  GUARD({
    at::set_num_threads(static_cast<int>(I(info, 0)));
    return info.Env().Undefined();
  })
}
Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  GUARD({ return Napi::Number::New(info.Env(), at::get_num_threads()); })
}
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  GUARD({
    at::manual_seed(static_cast<uint64_t>(I(info, 0)));
    return info.Env().Undefined();
  })
}
Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  GUARD({ return Napi::Boolean::New(info.Env(), at::hasCUDA()); })
}
// cudnnBenchmark(on): lets cuDNN time its convolution algorithms once per shape and keep the
// fastest (training sees one crop size, so it pays off after the first steps).
Napi::Value CudnnBenchmark(const Napi::CallbackInfo& info) {
  GUARD({
    at::globalContext().setBenchmarkCuDNN(B(info, 0));
    return info.Env().Undefined();
  })
}
// autocast(device "cpu"|"cuda", dtype|null): automatic mixed precision for the ops this thread
// runs next on that device type (libtorch's autocast: convolutions and matrix products in
// dtype, reductions, norms and losses in float32), or off again. Off also drops autocast's
// cache of lower-precision weight copies, which would go stale once the optimizer steps.
Napi::Value Autocast(const Napi::CallbackInfo& info) {
  GUARD({
    const std::string dev = S(info, 0);
    if (dev != "cpu" && dev != "cuda") throw std::invalid_argument("autocast: unknown device type " + dev);
    const at::DeviceType type = dev == "cuda" ? at::kCUDA : at::kCPU;
    const bool on = info[1].IsString();
    const at::ScalarType dtype = on ? Dtype(S(info, 1)) : at::kFloat;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    if (on) at::autocast::set_autocast_dtype(type, dtype);
    at::autocast::set_autocast_enabled(type, on);
#else
    if (type == at::kCUDA) {
      if (on) at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(on);
    } else {
      if (on) at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(on);
    }
#endif
    if (!on) at::autocast::clear_cache();
    return info.Env().Undefined();
  })
}
Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}
Napi::Value ParallelInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::get_parallel_info());
}

// exclusiveEnter() / exclusiveExit(): one model run at a time in the process (runtime.ts
// exclusive()). libtorch 1.13 on the CPU is not safe for a bfloat16 autocast run on one thread
// while another thread runs float32: the float32 thread's results came out wrong (2 to 12 grey
// levels off, once NaN) in about one start in fifteen; not once in 20 starts with both in
// float32 nor in 60 with the runs taking turns. Re-entrant per thread; a thread that ends (a
// terminated worker) while holding it lets go through its thread_local holder, so the others
// never wait forever.
std::mutex g_exclusive;
struct ExclusiveHold {
  int depth = 0;
  ~ExclusiveHold() {
    if (depth > 0) g_exclusive.unlock();
  }
};
thread_local ExclusiveHold t_exclusive;
Napi::Value ExclusiveEnter(const Napi::CallbackInfo& info) {
  if (t_exclusive.depth++ == 0) g_exclusive.lock();
  return info.Env().Undefined();
}
Napi::Value ExclusiveExit(const Napi::CallbackInfo& info) {
  if (t_exclusive.depth > 0 && --t_exclusive.depth == 0) g_exclusive.unlock();
  return info.Env().Undefined();
}

// Returns freed heap memory to the system. glibc keeps freed blocks of large tensors in its
// arenas (its mmap threshold slides up after each big free), so a long run of big, short-lived
// tensors (tiles of a large photo) would otherwise grow the resident size without bound.
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return info.Env().Undefined();
}

// profile(file|null): starts recording every ATen op (libtorch's legacy profiler) into a
// chrome://tracing file, or stops and writes it. For finding where time goes (MSDI_PROFILE).
// MSDI_NO_PROFILER builds without it, for libtorch versions that dropped the legacy profiler.
#ifndef MSDI_NO_PROFILER
std::unique_ptr<torch::autograd::profiler::RecordProfile> g_profile;
#endif
Napi::Value Profile(const Napi::CallbackInfo& info) {
  GUARD({
#ifndef MSDI_NO_PROFILER
    g_profile.reset();
    if (info[0].IsString()) g_profile = std::make_unique<torch::autograd::profiler::RecordProfile>(S(info, 0));
#else
    if (info[0].IsString()) throw std::runtime_error("profiling: this build has no profiler (MSDI_NO_PROFILER)");
#endif
    return info.Env().Undefined();
  })
}

// A deliberately failing call, so tests can check the error path end to end.
Napi::Value ProvokeError(const Napi::CallbackInfo& info) {
  GUARD({
    TORCH_CHECK(false, "provoked error for testing");
    return info.Env().Undefined();
  })
}

}  // namespace

#define EXPORT(name, fn) exports.Set(name, Napi::Function::New(env, fn, name))

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  EXPORT("fromBuffer", FromBuffer);
  EXPORT("toBuffer", ToBuffer);
  EXPORT("meta", Meta);
  EXPORT("free", Free);
  EXPORT("item", Item);
  EXPORT("zeros", Zeros);
  EXPORT("ones", Ones);
  EXPORT("randn", Randn);
  EXPORT("rand", Rand);
  EXPORT("empty", Empty);
  EXPORT("full", Full);
  EXPORT("arange", Arange);
  EXPORT("to", To);
  EXPORT("neg", Neg);
  EXPORT("abs", Abs);
  EXPORT("log", Log);
  EXPORT("exp", Exp);
  EXPORT("sqrt", Sqrt);
  EXPORT("rsqrt", Rsqrt);
  EXPORT("sigmoid", Sigmoid);
  EXPORT("tanh", Tanh);
  EXPORT("relu", Relu);
  EXPORT("sign", Sign);
  EXPORT("round", Round);
  EXPORT("floor", Floor);
  EXPORT("clone", Clone);
  EXPORT("contiguous", Contiguous);
  EXPORT("detach", Detach);
  EXPORT("allFinite", IsFinite);
  EXPORT("leakyRelu", LeakyRelu);
  EXPORT("clamp", Clamp);
  EXPORT("pow", Pow);
  EXPORT("add", Add);
  EXPORT("sub", Sub);
  EXPORT("mul", Mul);
  EXPORT("div", Div);
  EXPORT("maximum", Maximum);
  EXPORT("eq", Eq);
  EXPORT("gt", Gt);
  EXPORT("lt", Lt);
  EXPORT("matmul", Matmul);
  EXPORT("addScaled", AddScaled);
  EXPORT("where", Where);
  EXPORT("reduce", Reduce);
  EXPORT("argmax", Argmax);
  EXPORT("reshape", Reshape);
  EXPORT("permute", Permute);
  EXPORT("expand", Expand);
  EXPORT("flip", Flip);
  EXPORT("rot90", Rot90);
  EXPORT("slice", Slice);
  EXPORT("chunk", Chunk);
  EXPORT("cat", Cat);
  EXPORT("stack", Stack);
  EXPORT("indexSelect", IndexSelect);
  EXPORT("conv2d", Conv2d);
  EXPORT("convTranspose2d", ConvTranspose2d);
  EXPORT("convTranspose2x2", ConvTranspose2x2);
  EXPORT("contiguousAs", ContiguousAs);
  EXPORT("profile", Profile);
  EXPORT("isChannelsLast", IsChannelsLast);
  EXPORT("setChannelsLast", SetChannelsLast);
  EXPORT("moveTo", MoveTo);
  EXPORT("instanceNorm", InstanceNorm);
  EXPORT("batchNorm", BatchNorm);
  EXPORT("pad", Pad);
  EXPORT("interpolate", Interpolate);
  EXPORT("avgPool2d", AvgPool2d);
  EXPORT("normalize", Normalize);
  EXPORT("gridSample", GridSample);
  EXPORT("copyInto", CopyInto);
  EXPORT("setRequiresGrad", SetRequiresGrad);
  EXPORT("requiresGrad", RequiresGrad);
  EXPORT("backward", Backward);
  EXPORT("grad", Grad);
  EXPORT("zeroGrad", ZeroGrad);
  EXPORT("setGradEnabled", SetGradEnabled);
  EXPORT("enterInference", EnterInference);
  EXPORT("exitInference", ExitInference);
  EXPORT("isInference", IsInference);
  EXPORT("adamNew", AdamNew);
  EXPORT("adamStep", AdamStep);
  EXPORT("adamSetLr", AdamSetLr);
  EXPORT("adamZeroGrad", AdamZeroGrad);
  EXPORT("adamFree", AdamFree);
  EXPORT("adamGetState", AdamGetState);
  EXPORT("adamSetState", AdamSetState);
  EXPORT("clipGradNorm", ClipGradNorm);
  EXPORT("setNumThreads", SetNumThreads);
  EXPORT("getNumThreads", GetNumThreads);
  EXPORT("manualSeed", ManualSeed);
  EXPORT("cudaAvailable", CudaAvailable);
  EXPORT("cudnnBenchmark", CudnnBenchmark);
  EXPORT("autocast", Autocast);
  EXPORT("version", Version);
  EXPORT("parallelInfo", ParallelInfo);
  EXPORT("releaseFreeMemory", ReleaseFreeMemory);
  EXPORT("exclusiveEnter", ExclusiveEnter);
  EXPORT("exclusiveExit", ExclusiveExit);
  EXPORT("provokeError", ProvokeError);
  RegisterDistributed(env, exports);
  return exports;
}

NODE_API_MODULE(msdi_native, Init)
