# node-gyp build of the SSTP proxy's optional native splice path (Linux: splice(2), epoll).
# scripts/setup.sh runs build.sh; a failed build only means tunnels stay Node pipes.
# Warnings are errors (-Wall -Wextra -Werror; -Wunused-parameter undoes node-gyp's default
# -Wno-unused-parameter).
{
  "targets": [
    {
      "target_name": "tcp_splice",
      "sources": ["tcp_splice.c", "splice_core.c", "front_napi.c", "front_core.c", "front_tls.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wunused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../common"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["tcp_splice.c", "splice_core.c", "front_napi.c", "front_core.c", "front_tls.c"], "sources": ["unsupported.c"] }]
      ]
    }
  ]
}
