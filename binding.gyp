{
  "targets": [
    {
      "target_name": "zproxy",
      "sources": [
        "native/addon.cc",
        "native/accept_loop.cc",
        "native/accept_loop_binding.cc",
        "native/affinity.cc",
        "native/errors.cc",
        "native/fd_write.cc",
        "native/listen_socket.cc",
        "native/node_buffer.cc",
        "native/numa.cc",
        "native/splice_tunnel.cc",
        "native/splice_tunnel_binding.cc",
        "native/worker_listener.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
