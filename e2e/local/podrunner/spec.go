package main

// What a container of a pod becomes as a local process: its argv and
// environment as kubelet would give them (env values, fieldRef values,
// $(VAR) references), then rewritten for a process that shares the host's
// filesystem and network: paths under a volume's mountPath point into the
// pod's local directories, and the wildcard address 0.0.0.0 (which in a pod
// means the pod's own network namespace) becomes the pod's address.

import (
	"fmt"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// mount is a volume's mountPath in the container and the local directory
// standing for it.
type mount struct {
	containerPath string
	localDir      string
}

// fieldValue resolves an env valueFrom.fieldRef path of pod, whose address
// is podIP.
func fieldValue(pod *corev1.Pod, fieldPath, podIP string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	for prefix, values := range map[string]map[string]string{
		"metadata.labels":      pod.Labels,
		"metadata.annotations": pod.Annotations,
	} {
		if rest, ok := strings.CutPrefix(fieldPath, prefix+"['"); ok {
			if key, ok := strings.CutSuffix(rest, "']"); ok {
				return values[key], nil
			}
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", fieldPath)
}

// expand replaces $(NAME) by NAME's value in vars (left as is when NAME is
// not there) and $$ by $, as kubelet does in env values and args.
func expand(s string, vars map[string]string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			out.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			out.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				out.WriteString(s[i:])
				return out.String()
			}
			name := s[i+2 : i+2+end]
			if value, ok := vars[name]; ok {
				out.WriteString(value)
			} else {
				out.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			out.WriteByte('$')
		}
	}
	return out.String()
}

// pathBoundary is whether b may end a path or precede one inside a value
// like `--config=/etc/x` or `a:/etc/x,b`.
func pathBoundary(b byte) bool {
	return strings.IndexByte("=:, ;\"'", b) >= 0
}

// rewrite maps the paths under a mount's containerPath in s to its local
// directory, and the wildcard address to podIP.
func rewrite(s string, mounts []mount, podIP string) string {
	s = strings.ReplaceAll(s, "0.0.0.0", podIP)
	for _, m := range mounts {
		var out strings.Builder
		rest := s
		for {
			i := strings.Index(rest, m.containerPath)
			if i < 0 {
				out.WriteString(rest)
				break
			}
			end := i + len(m.containerPath)
			startsPath := i == 0 || pathBoundary(rest[i-1])
			endsPath := end == len(rest) || rest[end] == '/' || pathBoundary(rest[end])
			out.WriteString(rest[:i])
			if startsPath && endsPath {
				out.WriteString(m.localDir)
			} else {
				out.WriteString(m.containerPath)
			}
			rest = rest[end:]
		}
		s = out.String()
	}
	return s
}

// sortMounts orders mounts longest containerPath first, so a nested mount
// wins over its parent.
func sortMounts(mounts []mount) {
	sort.Slice(mounts, func(i, j int) bool {
		return len(mounts[i].containerPath) > len(mounts[j].containerPath)
	})
}

// imageName is the repository's last path element of an image reference
// (`ghcr.io/runnel-dev/runnel:0.1.0` is `runnel`).
func imageName(image string) string {
	if at := strings.IndexByte(image, '@'); at >= 0 {
		image = image[:at]
	}
	base := path.Base(image)
	if colon := strings.IndexByte(base, ':'); colon >= 0 {
		base = base[:colon]
	}
	return base
}

// imageError is an image with no local binary standing for it (a kubelet
// could not pull it).
type imageError struct{ image, name string }

func (e *imageError) Error() string {
	return fmt.Sprintf("image %s: no local binary for %q (-image NAME=PATH)", e.image, e.name)
}

// processSpec is what to exec for a container.
type processSpec struct {
	argv []string
	env  []string
}

// containerProcess builds the argv and environment of container c of pod
// at podIP. images maps an image name (see imageName) to the local binary
// standing for its entrypoint; configMapValue resolves configMapKeyRef.
func containerProcess(
	pod *corev1.Pod,
	c *corev1.Container,
	podIP string,
	mounts []mount,
	images map[string]string,
	configMapValue func(name, key string) (string, error),
) (processSpec, error) {
	vars := map[string]string{}
	var names []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			names = append(names, name)
		}
		vars[name] = value
	}
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	set("HOSTNAME", hostname)
	for _, e := range c.Env {
		value := e.Value
		switch {
		case e.ValueFrom == nil:
			value = expand(value, vars)
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, e.ValueFrom.FieldRef.FieldPath, podIP)
			if err != nil {
				return processSpec{}, fmt.Errorf("env %s: %w", e.Name, err)
			}
			value = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, err := configMapValue(ref.Name, ref.Key)
			if err != nil && (ref.Optional == nil || !*ref.Optional) {
				return processSpec{}, fmt.Errorf("env %s: %w", e.Name, err)
			}
			value = v
		default:
			return processSpec{}, fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
		set(e.Name, value)
	}

	binary, ok := images[imageName(c.Image)]
	if !ok {
		return processSpec{}, &imageError{image: c.Image, name: imageName(c.Image)}
	}
	var argv []string
	if len(c.Command) > 0 {
		// The command names the image's binary (its entrypoint) or a
		// program of the image: only the first is known here.
		if path.Base(c.Command[0]) != imageName(c.Image) {
			return processSpec{}, fmt.Errorf("command %q: only the image's own binary runs here", c.Command[0])
		}
		argv = append(argv, binary)
		for _, a := range c.Command[1:] {
			argv = append(argv, expand(a, vars))
		}
	} else {
		argv = append(argv, binary)
	}
	for _, a := range c.Args {
		argv = append(argv, expand(a, vars))
	}
	for i := 1; i < len(argv); i++ {
		argv[i] = rewrite(argv[i], mounts, podIP)
	}

	// The image's own environment: only a PATH.
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, name := range names {
		env = append(env, name+"="+rewrite(vars[name], mounts, podIP))
	}
	return processSpec{argv: argv, env: env}, nil
}
