// What msdi.cc and distributed.cc share: the tensor handle and the error guard.
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

#include <exception>
#include <string>

namespace msdi {

// A tensor crosses into JavaScript as an External wrapping a TensorBox (see msdi.cc).
struct TensorBox {
  at::Tensor t;
};

}  // namespace msdi

// Runs an entry point's body, turning a c10::Error or std::exception into a JavaScript Error
// whose message starts "libtorch: ". No C++ exception escapes to Node. Needs `info` in scope.
#define GUARD(...)                                                                 \
  try {                                                                             \
    __VA_ARGS__                                                                     \
  } catch (const Napi::Error&) {                                                    \
    throw;                                                                          \
  } catch (const c10::Error& e) {                                                   \
    throw Napi::Error::New(info.Env(), std::string("libtorch: ") + e.what_without_backtrace()); \
  } catch (const std::exception& e) {                                               \
    throw Napi::Error::New(info.Env(), std::string("libtorch: ") + e.what());       \
  }
