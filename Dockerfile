# switchyard/lb: the marathon-lb drop-in as a container.
#
#   docker run -d --net=host -e PORTS=9090 switchyard/lb:dev \
#     sse --marathon http://MASTER:8080 --group webapps01
#
# Built FROM scratch by .ci/images.sh, which assembles the build context:
# rootfs/ holds Debian's HAProxy 2.6 with exactly the shared libraries
# `ldd` lists (and the dynamic loader), dash as /bin/sh (for --command
# reload scripts), and the static `lb` binary. No registry is needed.
# See docs/docker.md.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
# Without --ssl-certs, lb creates /etc/ssl/cert.pem as a self-signed
# certificate (unless one is mounted there) and serves :443 with it, as
# marathon-lb's image does.
ENV SWITCHYARD_SELF_SIGNED_CERT=true
ENTRYPOINT ["/usr/local/bin/lb"]
