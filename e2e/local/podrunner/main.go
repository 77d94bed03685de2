// Command podrunner stands in for kube-scheduler and kubelet in the local
// Kubernetes tests (e2e/local): it registers a Node, binds every
// unscheduled pod to it, and runs the containers of the pods bound to it
// as local processes, each pod with its own loopback address and its DNS
// names in /etc/hosts. See runner.go for the loop, spec.go for what a
// container becomes, hosts.go for the names.
//
//	podrunner -state-dir DIR [-kubeconfig FILE] [-runnel target/debug/runnel]
//	podrunner -clean-hosts [-node-name NAME]   remove a crashed run's names
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// imageFlags maps image names to local binaries (-image NAME=PATH).
type imageFlags map[string]string

func (f imageFlags) String() string { return fmt.Sprint(map[string]string(f)) }

func (f imageFlags) Set(value string) error {
	name, path, ok := strings.Cut(value, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want NAME=PATH, got %q", value)
	}
	f[name] = path
	return nil
}

func main() {
	images := imageFlags{}
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of a user that may bind pods, write pod status and register nodes")
	node := flag.String("node-name", "runnel-local", "the Node's name")
	runnel := flag.String("runnel", "target/debug/runnel", "the binary standing for the runnel image's entrypoint")
	flag.Var(images, "image", "NAME=PATH: the binary standing for image NAME's entrypoint (repeatable; runnel is -runnel)")
	stateDir := flag.String("state-dir", "", "where pods' directories and claims' data live")
	hostsPath := flag.String("hosts-file", "/etc/hosts", "the hosts file the pods' DNS names go to")
	ipPrefix := flag.String("pod-ip-prefix", "127.0.0", "pods get addresses PREFIX.2 to PREFIX.254")
	logFile := flag.String("log-file", "", "log here instead of stderr")
	cpu := flag.String("cpu", "4", "the Node's allocatable CPU")
	memory := flag.String("memory", "16Gi", "the Node's allocatable memory")
	maxPods := flag.Int("max-pods", 110, "the Node's allocatable pods")
	cleanHosts := flag.Bool("clean-hosts", false, "remove the node's block from the hosts file and exit")
	flag.Parse()

	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatalf("log file: %v", err)
		}
		log.SetOutput(f)
		klog.LogToStderr(false)
		klog.SetOutput(f)
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if *cleanHosts {
		if err := writeBlock(*hostsPath, *node, nil); err != nil {
			log.Fatalf("hosts %s: %v", *hostsPath, err)
		}
		return
	}
	if *stateDir == "" {
		log.Fatal("-state-dir is required")
	}
	binary, err := filepath.Abs(*runnel)
	if err != nil {
		log.Fatal(err)
	}
	if _, ok := images["runnel"]; !ok {
		images["runnel"] = binary
	}
	for name, path := range images {
		if _, err := os.Stat(path); err != nil {
			log.Fatalf("image %s: %v", name, err)
		}
	}
	if err := os.MkdirAll(*stateDir, 0o755); err != nil {
		log.Fatal(err)
	}

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	config.UserAgent = "runnel-podrunner"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	// A crashed run's names go first.
	if err := writeBlock(*hostsPath, *node, nil); err != nil {
		log.Fatalf("hosts %s: %v", *hostsPath, err)
	}
	if err := registerNode(ctx, client, *node, *cpu, *memory, *maxPods); err != nil {
		log.Fatalf("register node %s: %v", *node, err)
	}
	log.Printf("node %s registered Ready", *node)
	go heartbeat(ctx, client, *node)

	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	pods := factory.Core().V1().Pods()
	services := factory.Core().V1().Services()
	r := &runner{
		client:    client,
		node:      *node,
		stateDir:  *stateDir,
		images:    images,
		hostsPath: *hostsPath,
		ipPrefix:  *ipPrefix,
		pods:      pods.Lister(),
		services:  services.Lister(),
		wake:      make(chan struct{}, 1),
		states:    map[types.UID]*podState{},
		bound:     map[types.UID]bool{},
		deleted:   map[types.UID]bool{},
	}
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { r.wakeUp() },
		UpdateFunc: func(any, any) { r.wakeUp() },
		DeleteFunc: func(any) { r.wakeUp() },
	}
	if _, err := pods.Informer().AddEventHandler(poke); err != nil {
		log.Fatal(err)
	}
	if _, err := services.Informer().AddEventHandler(poke); err != nil {
		log.Fatal(err)
	}
	factory.Start(ctx.Done())
	for informer, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			log.Fatalf("informer %v did not sync", informer)
		}
	}
	log.Printf("running pods of node %s (runnel: %s, state: %s)", *node, binary, *stateDir)
	r.loop(ctx)
	log.Printf("stopping: SIGTERM to every pod's processes")
	r.shutdown()
	factory.Shutdown()
	log.Printf("stopped")
}
