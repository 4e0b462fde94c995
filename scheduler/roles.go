package scheduler

// defaultRole is the Mesos role of apps that name none and are not in a
// top-level group enforcing its role (Marathon's --mesos_role default).
const defaultRole = "*"
