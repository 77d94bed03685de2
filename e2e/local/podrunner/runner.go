package main

// The runner's loop, in place of kube-scheduler and kubelet: binds every
// unscheduled pod to its node, runs each container of the pods bound to it
// as a local process (see spec.go), probes their readiness, reports their
// status through the status subresource, and stops them when their pod is
// deleted. The loop runs on every change the informers see and every half
// second (for probes and restarts).

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/utils/ptr"
)

const (
	syncInterval    = 500 * time.Millisecond
	firstBackoff    = time.Second
	maxBackoff      = 30 * time.Second
	setupRetry      = 2 * time.Second
	statusResend    = 5 * time.Second
	defaultGrace    = 30
	shutdownGraceSs = 20
)

type runner struct {
	client    kubernetes.Interface
	node      string
	stateDir  string
	images    map[string]string
	hostsPath string
	ipPrefix  string
	pods      corelisters.PodLister
	services  corelisters.ServiceLister
	wake      chan struct{}

	mu     sync.Mutex
	states map[types.UID]*podState
	// Pods bound or deleted by this runner, not yet seen so by the informer.
	bound   map[types.UID]bool
	deleted map[types.UID]bool
	hosts   []string
}

type podState struct {
	pod        *corev1.Pod
	ip         string
	dir        string
	startTime  metav1.Time
	containers []*container
	setupErr   string
	// Why setup failed, as kubelet says it: ErrImagePull or
	// CreateContainerConfigError.
	setupReason string
	nextSetup   time.Time
	stopping    bool
	lastSent    *corev1.PodStatus
	lastSentAt  time.Time
}

type container struct {
	spec corev1.Container
	proc processSpec

	// Set by the process's waiter, under runner.mu.
	running    bool
	exited     chan struct{}
	exitCode   int32
	finishedAt metav1.Time

	pid            int
	startedAt      metav1.Time
	restarts       int32
	lastTerminated *corev1.ContainerStateTerminated
	nextStart      time.Time
	backoff        time.Duration
	waitReason     string
	waitMessage    string

	ready     bool
	nextProbe time.Time
	successes int32
	failures  int32

	nextLiveness     time.Time
	livenessFailures int32
}

func (r *runner) wakeUp() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loop syncs until ctx ends.
func (r *runner) loop(ctx context.Context) {
	ticker := time.NewTicker(syncInterval)
	defer ticker.Stop()
	for {
		r.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-r.wake:
		}
	}
}

func (r *runner) sync(ctx context.Context) {
	pods, err := r.pods.List(labels.Everything())
	if err != nil {
		log.Printf("list pods: %v", err)
		return
	}
	seen := map[types.UID]bool{}
	for _, pod := range pods {
		if pod.Spec.NodeName == "" {
			r.bind(ctx, pod)
			continue
		}
		if pod.Spec.NodeName != r.node {
			continue
		}
		seen[pod.UID] = true
		r.mu.Lock()
		st := r.states[pod.UID]
		r.mu.Unlock()
		if pod.DeletionTimestamp != nil {
			if st == nil {
				r.deletePod(ctx, pod)
			} else if !st.stopping {
				r.mu.Lock()
				st.stopping = true
				r.mu.Unlock()
				go r.stop(ctx, st, graceOf(pod), true)
			}
			continue
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			if st == nil {
				continue
			}
		}
		if st == nil {
			st = &podState{pod: pod, startTime: metav1.Now()}
			r.mu.Lock()
			st.ip = r.allocateIP(pod.Status.PodIP)
			r.states[pod.UID] = st
			r.mu.Unlock()
			log.Printf("pod %s/%s: runs at %s", pod.Namespace, pod.Name, st.ip)
		}
		r.mu.Lock()
		stopping := st.stopping
		if !stopping {
			st.pod = pod
		}
		r.mu.Unlock()
		if stopping {
			continue
		}
		if st.containers == nil && time.Now().After(st.nextSetup) {
			if err := r.setup(ctx, st); err != nil {
				if err.Error() != st.setupErr {
					log.Printf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
				}
				st.setupErr = err.Error()
				st.setupReason = "CreateContainerConfigError"
				var image *imageError
				if errors.As(err, &image) {
					st.setupReason = "ErrImagePull"
				}
				st.nextSetup = time.Now().Add(setupRetry)
			} else {
				st.setupErr = ""
			}
		}
		r.runContainers(st)
		r.probe(st)
		r.checkLiveness(st)
		r.updateStatus(ctx, st)
	}
	r.mu.Lock()
	for uid, st := range r.states {
		if !seen[uid] && !st.stopping {
			// Gone from the API without this runner (a forced deletion).
			st.stopping = true
			go r.stop(ctx, st, graceOf(st.pod), false)
		}
	}
	r.mu.Unlock()
	r.syncHosts()
}

// bind acts as the scheduler: every pod for the default scheduler goes to
// this node (node selectors, affinity and resources are not looked at).
func (r *runner) bind(ctx context.Context, pod *corev1.Pod) {
	if pod.DeletionTimestamp != nil ||
		(pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName) {
		return
	}
	r.mu.Lock()
	done := r.bound[pod.UID]
	r.bound[pod.UID] = true
	r.mu.Unlock()
	if done {
		return
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: r.node},
	}
	if err := r.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		log.Printf("bind pod %s/%s: %v", pod.Namespace, pod.Name, err)
		r.mu.Lock()
		delete(r.bound, pod.UID)
		r.mu.Unlock()
		return
	}
	log.Printf("pod %s/%s: bound to node %s", pod.Namespace, pod.Name, r.node)
}

// allocateIP picks the pod's address: the one it had (a runner that
// restarts), else the lowest PREFIX.X no running pod has; called under
// r.mu.
func (r *runner) allocateIP(had string) string {
	used := map[string]bool{}
	for _, st := range r.states {
		used[st.ip] = true
	}
	if strings.HasPrefix(had, r.ipPrefix+".") && !used[had] {
		return had
	}
	for x := 2; x < 255; x++ {
		ip := r.ipPrefix + "." + strconv.Itoa(x)
		if !used[ip] {
			return ip
		}
	}
	return r.ipPrefix + ".254"
}

func graceOf(pod *corev1.Pod) time.Duration {
	seconds := int64(defaultGrace)
	if pod.DeletionGracePeriodSeconds != nil {
		seconds = *pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		seconds = *pod.Spec.TerminationGracePeriodSeconds
	}
	return time.Duration(seconds) * time.Second
}

// setup writes the pod's volumes into its directories and builds each
// container's process.
func (r *runner) setup(ctx context.Context, st *podState) error {
	pod := st.pod
	st.dir = filepath.Join(r.stateDir, "pods", pod.Namespace, pod.Name)
	volumesDir := filepath.Join(st.dir, "volumes")
	if err := os.RemoveAll(volumesDir); err != nil {
		return err
	}
	local := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(volumesDir, v.Name)
		switch {
		case v.PersistentVolumeClaim != nil:
			// By claim: the data outlives the pod, as the claim does.
			dir = filepath.Join(r.stateDir, "claims", pod.Namespace, v.PersistentVolumeClaim.ClaimName)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		case v.ConfigMap != nil:
			cm, err := r.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil && !(apierrors.IsNotFound(err) && ptr.Deref(v.ConfigMap.Optional, false)) {
				return fmt.Errorf("volume %s: configmap %s: %w", v.Name, v.ConfigMap.Name, err)
			}
			data := map[string][]byte{}
			if cm != nil {
				for k, s := range cm.Data {
					data[k] = []byte(s)
				}
				for k, b := range cm.BinaryData {
					data[k] = b
				}
			}
			if err := writeVolume(dir, data, v.ConfigMap.Items); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.Secret != nil:
			secret, err := r.client.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil && !(apierrors.IsNotFound(err) && ptr.Deref(v.Secret.Optional, false)) {
				return fmt.Errorf("volume %s: secret %s: %w", v.Name, v.Secret.SecretName, err)
			}
			data := map[string][]byte{}
			if secret != nil {
				data = secret.Data
			}
			if err := writeVolume(dir, data, v.Secret.Items); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.Projected != nil:
			if err := r.writeProjected(ctx, pod, st.ip, dir, v.Projected.Sources); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.DownwardAPI != nil:
			source := corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: v.DownwardAPI.Items}}
			if err := r.writeProjected(ctx, pod, st.ip, dir, []corev1.VolumeProjection{source}); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		default:
			return fmt.Errorf("volume %s: unsupported source", v.Name)
		}
		local[v.Name] = dir
	}
	configMapValue := func(name, key string) (string, error) {
		cm, err := r.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		value, ok := cm.Data[key]
		if !ok {
			return "", fmt.Errorf("configmap %s has no key %s", name, key)
		}
		return value, nil
	}
	var containers []*container
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		var mounts []mount
		for _, m := range c.VolumeMounts {
			dir, ok := local[m.Name]
			if !ok {
				return fmt.Errorf("container %s: mount of unknown volume %s", c.Name, m.Name)
			}
			mounts = append(mounts, mount{containerPath: m.MountPath, localDir: filepath.Join(dir, m.SubPath)})
		}
		sortMounts(mounts)
		proc, err := containerProcess(pod, c, st.ip, mounts, r.images, configMapValue)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		containers = append(containers, &container{spec: *c, proc: proc, backoff: firstBackoff})
	}
	r.mu.Lock()
	st.containers = containers
	r.mu.Unlock()
	return nil
}

// writeProjected writes a projected volume's sources into dir: a
// service account token from the TokenRequest API (bound to the pod, not
// refreshed), ConfigMap and Secret keys, downward API fields (the service
// account admission plugin gives every pod such a volume,
// kube-api-access-*).
func (r *runner) writeProjected(ctx context.Context, pod *corev1.Pod, podIP, dir string, sources []corev1.VolumeProjection) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, source := range sources {
		switch {
		case source.ServiceAccountToken != nil:
			t := source.ServiceAccountToken
			request := &authenticationv1.TokenRequest{
				Spec: authenticationv1.TokenRequestSpec{
					ExpirationSeconds: t.ExpirationSeconds,
					BoundObjectRef: &authenticationv1.BoundObjectReference{
						Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
					},
				},
			}
			if t.Audience != "" {
				request.Spec.Audiences = []string{t.Audience}
			}
			token, err := r.client.CoreV1().ServiceAccounts(pod.Namespace).
				CreateToken(ctx, pod.Spec.ServiceAccountName, request, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("token of service account %s: %w", pod.Spec.ServiceAccountName, err)
			}
			if err := writeVolume(dir, map[string][]byte{t.Path: []byte(token.Status.Token)}, nil); err != nil {
				return err
			}
		case source.ConfigMap != nil:
			cm, err := r.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, source.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(source.ConfigMap.Optional, false) {
					continue
				}
				return fmt.Errorf("configmap %s: %w", source.ConfigMap.Name, err)
			}
			data := map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			if err := writeVolume(dir, data, source.ConfigMap.Items); err != nil {
				return err
			}
		case source.Secret != nil:
			secret, err := r.client.CoreV1().Secrets(pod.Namespace).Get(ctx, source.Secret.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(source.Secret.Optional, false) {
					continue
				}
				return fmt.Errorf("secret %s: %w", source.Secret.Name, err)
			}
			if err := writeVolume(dir, secret.Data, source.Secret.Items); err != nil {
				return err
			}
		case source.DownwardAPI != nil:
			data := map[string][]byte{}
			for _, item := range source.DownwardAPI.Items {
				if item.FieldRef == nil {
					return fmt.Errorf("downward API %s: only fieldRef", item.Path)
				}
				value, err := fieldValue(pod, item.FieldRef.FieldPath, podIP)
				if err != nil {
					return err
				}
				data[item.Path] = []byte(value)
			}
			if err := writeVolume(dir, data, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeVolume writes a ConfigMap's or Secret's keys (or only items) as
// files of dir.
func writeVolume(dir string, data map[string][]byte, items []corev1.KeyToPath) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = v
		}
	}
	for _, item := range items {
		value, ok := data[item.Key]
		if !ok {
			return fmt.Errorf("no key %s", item.Key)
		}
		files[item.Path] = value
	}
	for name, value := range files {
		file := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, value, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runContainers starts the containers not running whose restart is due.
func (r *runner) runContainers(st *podState) {
	policy := st.pod.Spec.RestartPolicy
	for _, c := range st.containers {
		r.mu.Lock()
		running, exited, code := c.running, c.exited, c.exitCode
		r.mu.Unlock()
		if running {
			continue
		}
		if exited != nil {
			// It ran and exited: again only as the restart policy says.
			if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && code == 0) {
				continue
			}
		}
		if time.Now().Before(c.nextStart) {
			continue
		}
		r.start(st, c)
	}
}

func (r *runner) start(st *podState, c *container) {
	name := fmt.Sprintf("%s/%s/%s", st.pod.Namespace, st.pod.Name, c.spec.Name)
	if c.exited != nil {
		c.restarts++
		c.lastTerminated = &corev1.ContainerStateTerminated{
			ExitCode:   c.exitCode,
			Reason:     exitReason(c.exitCode),
			StartedAt:  c.startedAt,
			FinishedAt: c.finishedAt,
		}
	}
	logFile, err := os.OpenFile(filepath.Join(st.dir, c.spec.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.startFailed(c, name, err)
		return
	}
	defer logFile.Close()
	cmd := exec.Command(c.proc.argv[0], c.proc.argv[1:]...)
	cmd.Env = c.proc.env
	cmd.Dir = st.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group (signalled whole), killed with the runner.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.startFailed(c, name, err)
		return
	}
	exited := make(chan struct{})
	r.mu.Lock()
	c.running = true
	c.exited = exited
	c.pid = cmd.Process.Pid
	c.startedAt = metav1.Now()
	c.ready = false
	c.successes, c.failures = 0, 0
	c.waitReason, c.waitMessage = "", ""
	r.mu.Unlock()
	c.nextProbe = time.Now()
	if p := c.spec.ReadinessProbe; p != nil {
		c.nextProbe = c.nextProbe.Add(time.Duration(p.InitialDelaySeconds) * time.Second)
	}
	c.nextLiveness = time.Now()
	c.livenessFailures = 0
	if p := c.spec.LivenessProbe; p != nil {
		c.nextLiveness = c.nextLiveness.Add(time.Duration(p.InitialDelaySeconds) * time.Second)
	}
	log.Printf("container %s: started pid %d: %q", name, cmd.Process.Pid, c.proc.argv)
	go func() {
		err := cmd.Wait()
		code := int32(0)
		if cmd.ProcessState != nil {
			code = int32(cmd.ProcessState.ExitCode())
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int32(ws.Signal())
			}
		}
		log.Printf("container %s: pid %d exited with %d (%v)", name, cmd.Process.Pid, code, err)
		r.mu.Lock()
		c.running = false
		c.exitCode = code
		c.finishedAt = metav1.Now()
		c.ready = false
		if time.Since(c.startedAt.Time) > 10*time.Minute {
			c.backoff = firstBackoff
		}
		c.nextStart = time.Now().Add(c.backoff)
		c.backoff = min(2*c.backoff, maxBackoff)
		r.mu.Unlock()
		close(exited)
		r.wakeUp()
	}()
}

func (r *runner) startFailed(c *container, name string, err error) {
	log.Printf("container %s: %v", name, err)
	r.mu.Lock()
	c.waitReason, c.waitMessage = "RunContainerError", err.Error()
	c.nextStart = time.Now().Add(c.backoff)
	c.backoff = min(2*c.backoff, maxBackoff)
	r.mu.Unlock()
}

func exitReason(code int32) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

// periodOf is a probe's period (10 s when unset).
func periodOf(p *corev1.Probe) time.Duration {
	if p.PeriodSeconds <= 0 {
		return 10 * time.Second
	}
	return time.Duration(p.PeriodSeconds) * time.Second
}

// failureThresholdOf is a probe's failure threshold (3 when unset).
func failureThresholdOf(p *corev1.Probe) int32 {
	if p.FailureThreshold <= 0 {
		return 3
	}
	return p.FailureThreshold
}

// checkLiveness runs the liveness probes that are due; a container failing
// its probe failureThreshold times in a row is stopped (SIGTERM, SIGKILL
// after the pod's grace period) and restarted as its restart policy says.
func (r *runner) checkLiveness(st *podState) {
	for _, c := range st.containers {
		r.mu.Lock()
		running, pid, exited := c.running, c.pid, c.exited
		r.mu.Unlock()
		p := c.spec.LivenessProbe
		if !running || p == nil || time.Now().Before(c.nextLiveness) {
			continue
		}
		c.nextLiveness = time.Now().Add(periodOf(p))
		if r.probeOnce(st, c, p) {
			c.livenessFailures = 0
			continue
		}
		c.livenessFailures++
		if c.livenessFailures < failureThresholdOf(p) {
			continue
		}
		c.livenessFailures = 0
		grace := graceOf(st.pod)
		log.Printf("container %s/%s/%s: liveness probe failed %d times: SIGTERM pid %d",
			st.pod.Namespace, st.pod.Name, c.spec.Name, failureThresholdOf(p), pid)
		syscall.Kill(-pid, syscall.SIGTERM)
		go func() {
			select {
			case <-exited:
			case <-time.After(grace):
				syscall.Kill(-pid, syscall.SIGKILL)
			}
		}()
	}
}

// probe runs the readiness probes that are due (httpGet and tcpSocket on
// the pod's address; exec probes always succeed). A container without a
// readiness probe is ready while it runs.
func (r *runner) probe(st *podState) {
	for _, c := range st.containers {
		r.mu.Lock()
		running := c.running
		r.mu.Unlock()
		p := c.spec.ReadinessProbe
		if !running || p == nil {
			r.mu.Lock()
			c.ready = running
			r.mu.Unlock()
			continue
		}
		if time.Now().Before(c.nextProbe) {
			continue
		}
		c.nextProbe = time.Now().Add(periodOf(p))
		ok := r.probeOnce(st, c, p)
		r.mu.Lock()
		if ok {
			c.failures = 0
			c.successes++
			if c.successes >= max(p.SuccessThreshold, 1) {
				c.ready = true
			}
		} else {
			c.successes = 0
			c.failures++
			if c.failures >= failureThresholdOf(p) || !c.ready {
				c.ready = false
			}
		}
		r.mu.Unlock()
	}
}

func (r *runner) probeOnce(st *podState, c *container, p *corev1.Probe) bool {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	switch {
	case p.HTTPGet != nil:
		host := p.HTTPGet.Host
		if host == "" {
			host = st.ip
		}
		port, err := portOf(&c.spec, p.HTTPGet.Port)
		if err != nil {
			return false
		}
		client := http.Client{Timeout: timeout}
		resp, err := client.Get(fmt.Sprintf("http://%s%s", net.JoinHostPort(host, strconv.Itoa(port)), p.HTTPGet.Path))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	case p.TCPSocket != nil:
		port, err := portOf(&c.spec, p.TCPSocket.Port)
		if err != nil {
			return false
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(st.ip, strconv.Itoa(port)), timeout)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	return true
}

// portOf resolves a probe's port, by number or by the container port's
// name.
func portOf(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("no container port named %s", port.StrVal)
}

// updateStatus posts the pod's status when it changed.
func (r *runner) updateStatus(ctx context.Context, st *podState) {
	status := r.podStatus(st)
	if apiequality.Semantic.DeepEqual(status, st.pod.Status) {
		return
	}
	if st.lastSent != nil && apiequality.Semantic.DeepEqual(status, *st.lastSent) &&
		time.Since(st.lastSentAt) < statusResend {
		return
	}
	pod := st.pod.DeepCopy()
	pod.Status = status
	if _, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			log.Printf("pod %s/%s: status: %v", pod.Namespace, pod.Name, err)
		}
		return
	}
	st.lastSent = &status
	st.lastSentAt = time.Now()
}

func (r *runner) podStatus(st *podState) corev1.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := st.pod.Status
	status := *old.DeepCopy()
	now := metav1.Now()
	status.HostIP = hostIP
	status.HostIPs = []corev1.HostIP{{IP: hostIP}}
	status.PodIP = st.ip
	status.PodIPs = []corev1.PodIP{{IP: st.ip}}
	if status.StartTime == nil {
		status.StartTime = &st.startTime
	}
	status.Reason, status.Message = "", ""
	allReady := len(st.containers) > 0
	anyRunning, anyRestarting, anyFailed := false, false, false
	status.ContainerStatuses = nil
	for i, spec := range st.pod.Spec.Containers {
		cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: "podrunner://" + imageName(spec.Image)}
		if i >= len(st.containers) {
			// Not set up: a volume or env source is missing.
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: st.setupReason, Message: st.setupErr}
			allReady = false
			status.ContainerStatuses = append(status.ContainerStatuses, cs)
			continue
		}
		c := st.containers[i]
		cs.RestartCount = c.restarts
		cs.LastTerminationState.Terminated = c.lastTerminated
		cs.Ready = c.running && c.ready
		cs.Started = ptr.To(c.running)
		switch {
		case c.running:
			cs.ContainerID = fmt.Sprintf("podrunner://%d", c.pid)
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: c.startedAt}
			anyRunning = true
		case c.exited != nil:
			policy := st.pod.Spec.RestartPolicy
			restarts := policy == corev1.RestartPolicyAlways || policy == "" ||
				(policy == corev1.RestartPolicyOnFailure && c.exitCode != 0)
			if restarts {
				cs.State.Waiting = &corev1.ContainerStateWaiting{
					Reason:  "CrashLoopBackOff",
					Message: fmt.Sprintf("exited with %d; restarting", c.exitCode),
				}
				cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
					ExitCode: c.exitCode, Reason: exitReason(c.exitCode),
					StartedAt: c.startedAt, FinishedAt: c.finishedAt,
				}
				anyRestarting = true
			} else {
				cs.State.Terminated = &corev1.ContainerStateTerminated{
					ExitCode: c.exitCode, Reason: exitReason(c.exitCode),
					StartedAt: c.startedAt, FinishedAt: c.finishedAt,
				}
				anyFailed = anyFailed || c.exitCode != 0
			}
		default:
			reason := c.waitReason
			if reason == "" {
				reason = "ContainerCreating"
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: c.waitMessage}
		}
		allReady = allReady && cs.Ready
		status.ContainerStatuses = append(status.ContainerStatuses, cs)
	}
	switch {
	case anyRunning || anyRestarting:
		status.Phase = corev1.PodRunning
	case len(st.containers) > 0 && anyFailed:
		status.Phase = corev1.PodFailed
	case len(st.containers) > 0 && allExited(st.containers):
		status.Phase = corev1.PodSucceeded
	default:
		status.Phase = corev1.PodPending
	}
	setCondition(&status.Conditions, corev1.PodReadyToStartContainers, true, now)
	setCondition(&status.Conditions, corev1.PodInitialized, true, now)
	setCondition(&status.Conditions, corev1.ContainersReady, allReady, now)
	setCondition(&status.Conditions, corev1.PodReady, allReady, now)
	return status
}

func allExited(containers []*container) bool {
	for _, c := range containers {
		if c.running || c.exited == nil {
			return false
		}
	}
	return true
}

// setCondition sets condition kind to value, its transition time moving
// only when the value changes.
func setCondition(conditions *[]corev1.PodCondition, kind corev1.PodConditionType, value bool, now metav1.Time) {
	status := corev1.ConditionFalse
	if value {
		status = corev1.ConditionTrue
	}
	for i := range *conditions {
		c := &(*conditions)[i]
		if c.Type == kind {
			if c.Status != status {
				c.Status = status
				c.LastTransitionTime = now
			}
			return
		}
	}
	*conditions = append(*conditions, corev1.PodCondition{Type: kind, Status: status, LastTransitionTime: now})
}

// stop ends the pod's processes: SIGTERM to each process group, SIGKILL
// after grace; then, when deletePod, deletes the pod for good (grace 0),
// as kubelet does once its containers are gone.
func (r *runner) stop(ctx context.Context, st *podState, grace time.Duration, deletePod bool) {
	pod := st.pod
	log.Printf("pod %s/%s: stopping (grace %s)", pod.Namespace, pod.Name, grace)
	r.syncHosts()
	var waits []chan struct{}
	r.mu.Lock()
	for _, c := range st.containers {
		if c.running {
			syscall.Kill(-c.pid, syscall.SIGTERM)
			waits = append(waits, c.exited)
		}
	}
	pids := map[chan struct{}]int{}
	for _, c := range st.containers {
		if c.running {
			pids[c.exited] = c.pid
		}
	}
	r.mu.Unlock()
	deadline := time.After(grace)
	for _, exited := range waits {
		select {
		case <-exited:
		case <-deadline:
			log.Printf("pod %s/%s: SIGKILL pid %d after %s", pod.Namespace, pod.Name, pids[exited], grace)
			syscall.Kill(-pids[exited], syscall.SIGKILL)
			<-exited
			deadline = time.After(0)
		}
	}
	r.mu.Lock()
	delete(r.states, pod.UID)
	r.mu.Unlock()
	if deletePod {
		r.deletePod(ctx, pod)
	}
	log.Printf("pod %s/%s: stopped", pod.Namespace, pod.Name)
	r.wakeUp()
}

// deletePod removes a pod whose containers are gone (grace 0, this pod
// only: not a newer one of the same name).
func (r *runner) deletePod(ctx context.Context, pod *corev1.Pod) {
	r.mu.Lock()
	done := r.deleted[pod.UID]
	r.deleted[pod.UID] = true
	r.mu.Unlock()
	if done {
		return
	}
	err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.Printf("delete pod %s/%s: %v", pod.Namespace, pod.Name, err)
		r.mu.Lock()
		delete(r.deleted, pod.UID)
		r.mu.Unlock()
		return
	}
	log.Printf("pod %s/%s: deleted", pod.Namespace, pod.Name)
}

// syncHosts writes the DNS names of the running pods, as the EndpointSlice
// controller and cluster DNS would make them (EndpointSlice validation
// refuses loopback addresses, so the slices stay empty here): for each
// Service whose selector matches the pod, when the pod is ready or the
// Service publishes not-ready addresses, `<svc>.<ns>.svc` and, when the
// Service is headless and the pod's subdomain, `<hostname>.<svc>.<ns>.svc`,
// each with and without `.cluster.local`, naming the pod's address: a
// Service resolves to its pods, not to a cluster IP (no kube-proxy).
func (r *runner) syncHosts() {
	type local struct {
		pod   *corev1.Pod
		ip    string
		ready bool
	}
	var pods []local
	r.mu.Lock()
	for _, st := range r.states {
		if st.stopping {
			continue
		}
		ready := len(st.containers) > 0
		for _, c := range st.containers {
			ready = ready && c.running && c.ready
		}
		pods = append(pods, local{pod: st.pod, ip: st.ip, ready: ready})
	}
	r.mu.Unlock()
	services, err := r.services.List(labels.Everything())
	if err != nil {
		log.Printf("list services: %v", err)
		return
	}
	names := map[string][]string{}
	add := func(name, ip string) {
		for _, have := range names[name] {
			if have == ip {
				return
			}
		}
		names[name] = append(names[name], ip)
	}
	for _, svc := range services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		selector := labels.SelectorFromSet(svc.Spec.Selector)
		headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
		for _, p := range pods {
			if p.pod.Namespace != svc.Namespace || !selector.Matches(labels.Set(p.pod.Labels)) ||
				!(p.ready || svc.Spec.PublishNotReadyAddresses) {
				continue
			}
			hostname := p.pod.Spec.Hostname
			if hostname == "" {
				hostname = p.pod.Name
			}
			for _, suffix := range []string{".svc", ".svc.cluster.local"} {
				add(svc.Name+"."+svc.Namespace+suffix, p.ip)
				if headless && p.pod.Spec.Subdomain == svc.Name {
					add(hostname+"."+svc.Name+"."+svc.Namespace+suffix, p.ip)
				}
			}
		}
	}
	lines := hostsLines(names)
	r.mu.Lock()
	defer r.mu.Unlock()
	if equalLines(lines, r.hosts) {
		return
	}
	if err := writeBlock(r.hostsPath, r.node, lines); err != nil {
		log.Printf("hosts %s: %v", r.hostsPath, err)
		return
	}
	log.Printf("hosts %s: %d names", r.hostsPath, len(lines))
	r.hosts = lines
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// shutdown stops every pod's processes (grace capped at
// shutdownGraceSs seconds) without deleting the pods, and removes the
// hosts block.
func (r *runner) shutdown() {
	r.mu.Lock()
	var states []*podState
	for _, st := range r.states {
		if !st.stopping {
			st.stopping = true
			states = append(states, st)
		}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, st := range states {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.stop(context.Background(), st, min(graceOf(st.pod), shutdownGraceSs*time.Second), false)
		}()
	}
	wg.Wait()
	// Wait for stops begun before (deletions in progress).
	for {
		r.mu.Lock()
		n := len(r.states)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := writeBlock(r.hostsPath, r.node, nil); err != nil {
		log.Printf("hosts %s: %v", r.hostsPath, err)
	}
}
