{
  "targets": [
    {
      "target_name": "msdi_native",
      "sources": ["native/msdi.cc", "native/distributed.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/libtorch-config.mjs include)"
      ],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8", "<!@(node scripts/libtorch-config.mjs defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "<!@(node scripts/libtorch-config.mjs cflags)"],
      "libraries": ["<!@(node scripts/libtorch-config.mjs libs)"]
    }
  ]
}
