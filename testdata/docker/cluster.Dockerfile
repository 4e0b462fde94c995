# switchyard/cluster: scheduler, agent and the all-in-one switchyard binary
# (plus lb and HAProxy, so one image can play every role). There is no
# ENTRYPOINT: the container command picks the role, e.g.
#
#   docker run switchyard/cluster:dev scheduler --http-addr :8080
#   docker run -v /var/run/docker.sock:/var/run/docker.sock switchyard/cluster:dev agent --master http://sched:8080 --docker
#
# Built FROM scratch by .ci/images.sh (see docs/docker.md).
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/usr/local/bin/switchyard"]
