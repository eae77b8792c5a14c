# node-gyp build of the relay's optional native fast path (Linux: epoll, recvmmsg, sendmmsg).
# scripts/setup.sh runs it; a failed build only means the relay forwards in JavaScript.
# Warnings are errors (-Wall -Wextra -Werror; -Wunused-parameter undoes node-gyp's default
# -Wno-unused-parameter).
{
  "targets": [
    {
      "target_name": "udp_fastpath",
      "sources": ["udp_fastpath.c", "fastpath_core.c", "reuseport.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wunused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../common"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["udp_fastpath.c", "fastpath_core.c", "reuseport.c"], "sources": ["unsupported.c"] }]
      ]
    }
  ]
}
