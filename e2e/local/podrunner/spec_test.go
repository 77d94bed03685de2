package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpandLikeKubelet(t *testing.T) {
	vars := map[string]string{"POD_NAME": "demo-0", "NS": "e2e"}
	for in, want := range map[string]string{
		"PLAINTEXT://$(POD_NAME).svc.$(NS):9092": "PLAINTEXT://demo-0.svc.e2e:9092",
		"$(MISSING)/x":                           "$(MISSING)/x",
		"$$(POD_NAME)":                           "$(POD_NAME)",
		"cost $5":                                "cost $5",
		"open $(":                                "open $(",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRewriteMapsMountPathsAndTheWildcard(t *testing.T) {
	mounts := []mount{
		{containerPath: "/etc/runnel", localDir: "/tmp/p/config"},
		{containerPath: "/var/lib/runnel", localDir: "/tmp/claims/data-demo-0"},
	}
	sortMounts(mounts)
	for in, want := range map[string]string{
		"/etc/runnel/server.properties": "/tmp/p/config/server.properties",
		"--config=/etc/runnel/x":        "--config=/tmp/p/config/x",
		"/var/lib/runnel":               "/tmp/claims/data-demo-0",
		"/etc/runnelish":                "/etc/runnelish",
		"/opt/etc/runnel":               "/opt/etc/runnel",
		"PLAINTEXT://0.0.0.0:9092":      "PLAINTEXT://127.0.0.7:9092",
	} {
		if got := rewrite(in, mounts, "127.0.0.7"); got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainerProcessResolvesEnv(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "demo-0", Namespace: "e2e",
			Labels: map[string]string{"apps.kubernetes.io/pod-index": "0"},
		},
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	c := &corev1.Container{
		Name:  "runnel",
		Image: "ghcr.io/runnel-dev/runnel:0.1.0",
		Args:  []string{"serve", "--config", "/etc/runnel/server.properties"},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			{Name: "RUNNEL_NODE_ID", ValueFrom: field("metadata.labels['apps.kubernetes.io/pod-index']")},
			{Name: "IP", ValueFrom: field("status.podIP")},
			{Name: "RUNNEL_ADVERTISED_LISTENERS", Value: "PLAINTEXT://$(POD_NAME).demo-brokers.$(POD_NAMESPACE).svc:9092"},
			{Name: "RUNNEL_LISTENERS", Value: "PLAINTEXT://0.0.0.0:9092"},
		},
	}
	mounts := []mount{{containerPath: "/etc/runnel", localDir: "/tmp/p/config"}}
	proc, err := containerProcess(pod, c, "127.0.0.3", mounts, map[string]string{"runnel": "/bin/runnel"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(proc.argv, " "); got != "/bin/runnel serve --config /tmp/p/config/server.properties" {
		t.Errorf("argv %q", got)
	}
	env := strings.Join(proc.env, "\n")
	for _, want := range []string{
		"HOSTNAME=demo-0", "POD_NAME=demo-0", "POD_NAMESPACE=e2e", "RUNNEL_NODE_ID=0", "IP=127.0.0.3",
		"RUNNEL_ADVERTISED_LISTENERS=PLAINTEXT://demo-0.demo-brokers.e2e.svc:9092",
		"RUNNEL_LISTENERS=PLAINTEXT://127.0.0.3:9092",
	} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("no %s in\n%s", want, env)
		}
	}
	c.Image = "busybox"
	if _, err := containerProcess(pod, c, "127.0.0.3", mounts, map[string]string{"runnel": "/bin/runnel"}, nil); err == nil {
		t.Error("an image without a local binary ran")
	}
}

func TestHostsBlockIsReplacedWhole(t *testing.T) {
	hosts := []byte("127.0.0.1 localhost\n")
	one := withBlock(hosts, "n1", []string{"127.0.0.2 a.ns.svc"})
	two := withBlock(one, "n2", []string{"127.0.0.9 b.ns.svc"})
	again := withBlock(two, "n1", []string{"127.0.0.3 c.ns.svc"})
	want := "127.0.0.1 localhost\n" +
		"# BEGIN runnel-podrunner n2\n127.0.0.9 b.ns.svc\n# END runnel-podrunner n2\n" +
		"# BEGIN runnel-podrunner n1\n127.0.0.3 c.ns.svc\n# END runnel-podrunner n1\n"
	if string(again) != want {
		t.Errorf("got\n%s\nwant\n%s", again, want)
	}
	if got := withBlock(withBlock(again, "n1", nil), "n2", nil); string(got) != string(hosts) {
		t.Errorf("cleaned: %q", got)
	}
}
