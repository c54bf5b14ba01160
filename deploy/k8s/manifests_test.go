// Package k8s holds the bench harness's Kubernetes manifests and, in this
// separate module (so that the product's module does not depend on
// Kubernetes), the test that decodes them strictly with Kubernetes' own
// API types. Run it with: cd deploy/k8s && go test ./...
package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded objects of every *.yaml file here.
type manifests struct {
	services     map[string]*corev1.Service
	secrets      map[string]*corev1.Secret
	configMaps   map[string]*corev1.ConfigMap
	statefulSets map[string]*appsv1.StatefulSet
	jobs         map[string]*batchv1.Job
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeStrict decodes one document into the API type its apiVersion and
// kind name, refusing unknown and duplicate fields.
func decodeStrict(doc []byte, m *manifests) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj interface{ GetName() string }
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "batch/v1 Job":
		obj = &batchv1.Job{}
	default:
		return fmt.Errorf("unexpected object %q %q", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	if obj.GetName() == "" {
		return fmt.Errorf("%s without a name", tm.Kind)
	}
	switch o := obj.(type) {
	case *corev1.Service:
		m.services[o.Name] = o
	case *corev1.Secret:
		m.secrets[o.Name] = o
	case *corev1.ConfigMap:
		m.configMaps[o.Name] = o
	case *appsv1.StatefulSet:
		m.statefulSets[o.Name] = o
	case *batchv1.Job:
		m.jobs[o.Name] = o
	}
	return nil
}

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{map[string]*corev1.Service{}, map[string]*corev1.Secret{}, map[string]*corev1.ConfigMap{},
		map[string]*appsv1.StatefulSet{}, map[string]*batchv1.Job{}}
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := decodeStrict([]byte(doc), m); err != nil {
				t.Errorf("%s, document %d: %v", f, i, err)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// Every manifest decodes strictly into Kubernetes' API types.
func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	if len(m.services) != 1 || len(m.statefulSets) != 2 || len(m.jobs) != 1 || len(m.configMaps) != 1 || len(m.secrets) != 1 {
		t.Fatalf("want 1 service, 2 statefulsets, 1 job, 1 configmap, 1 secret; have %d, %d, %d, %d, %d",
			len(m.services), len(m.statefulSets), len(m.jobs), len(m.configMaps), len(m.secrets))
	}
}

// Strict decoding is strict: a misspelt field is an error, where plain
// decoding would drop it.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	data, err := os.ReadFile("statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(data, []byte("  replicas: "), []byte("  replica: "), 1)
	if bytes.Equal(bad, data) {
		t.Fatal("statefulset.yaml has no replicas field to misspell")
	}
	m := &manifests{statefulSets: map[string]*appsv1.StatefulSet{}}
	if err := decodeStrict(bad, m); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("misspelt field accepted: %v", err)
	}
	dup := append(append([]byte(nil), data...), []byte("kind: StatefulSet\n")...)
	if err := decodeStrict(dup, m); err == nil {
		t.Fatal("duplicate field accepted")
	}
}

// The objects fit together: the Service is headless and selects every
// node; each StatefulSet is governed by it and selects its own pods; every
// Secret and ConfigMap key referred to exists; the harness's targets name
// exactly the pods the StatefulSets make.
func TestManifestsFitTogether(t *testing.T) {
	m := load(t)
	svc := m.services["pastry"]
	if svc == nil {
		t.Fatal("no Service pastry")
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service pastry: clusterIP %q, publishNotReadyAddresses %v; want a headless Service that publishes starting pods",
			svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
	}
	ports := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p.Port
	}
	if ports["api"] != 7700 || ports["p2p"] != 7701 {
		t.Errorf("Service ports %v, want api 7700 and p2p 7701", ports)
	}
	var want []string // the pods' DNS names, as targets.json must list them
	for _, name := range []string{"pastry-seed", "pastry"} {
		ss := m.statefulSets[name]
		if ss == nil {
			t.Fatalf("no StatefulSet %s", name)
		}
		if ss.Spec.ServiceName != svc.Name {
			t.Errorf("%s: serviceName %q, want %q", name, ss.Spec.ServiceName, svc.Name)
		}
		labels := ss.Spec.Template.Labels
		for k, v := range ss.Spec.Selector.MatchLabels {
			if labels[k] != v {
				t.Errorf("%s: selector %s=%s does not select its pods (%v)", name, k, v, labels)
			}
		}
		for k, v := range svc.Spec.Selector {
			if labels[k] != v {
				t.Errorf("%s: the Service's selector %s=%s misses its pods", name, k, v)
			}
		}
		if ss.Spec.Replicas == nil || *ss.Spec.Replicas < 1 {
			t.Fatalf("%s: no replicas", name)
		}
		for i := range *ss.Spec.Replicas {
			want = append(want, fmt.Sprintf("http://%s-%d.%s:7700", name, i, svc.Name))
		}
		checkPod(t, m, name, ss.Spec.Template.Spec)
	}
	if len(m.statefulSets["pastry-seed"].Spec.Template.Spec.Volumes) < 2 {
		t.Error("the seed mounts no key")
	}
	for _, e := range m.statefulSets["pastry"].Spec.Template.Spec.Containers[0].Env {
		if e.Name == "PASTRY_BOOTSTRAP" && e.ValueFrom == nil {
			t.Error("PASTRY_BOOTSTRAP not from the ConfigMap")
		}
	}
	job := m.jobs["pastry-bench"]
	if job == nil {
		t.Fatal("no Job pastry-bench")
	}
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Job restartPolicy %q, want Never", job.Spec.Template.Spec.RestartPolicy)
	}
	checkPod(t, m, "job", job.Spec.Template.Spec)
	args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.HasPrefix(args, "bench cluster --targets /etc/pastry-bench/targets.json") {
		t.Errorf("Job args %q: want pastry bench cluster --targets", args)
	}

	cm := m.configMaps["pastry-bench"]
	var tf struct {
		Nodes []struct {
			API string `json:"api"`
		} `json:"nodes"`
	}
	dec := json.NewDecoder(strings.NewReader(cm.Data["targets.json"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tf); err != nil {
		t.Fatalf("targets.json: %v", err)
	}
	var got []string
	for _, n := range tf.Nodes {
		got = append(got, n.API)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("targets.json names\n %v\nthe StatefulSets make\n %v", got, want)
	}
	if !strings.HasPrefix(cm.Data["PASTRY_BOOTSTRAP"], "/dns4/pastry-seed-0.pastry.") {
		t.Errorf("PASTRY_BOOTSTRAP %q: want the seed's DNS name", cm.Data["PASTRY_BOOTSTRAP"])
	}
}

// checkPod checks a pod template: every key it takes from a Secret or a
// ConfigMap exists (but the seed's key, which the operator creates from a
// file), it runs as non-root on a read-only root file system, and
// every volume mount has its volume.
func checkPod(t *testing.T, m *manifests, who string, spec corev1.PodSpec) {
	t.Helper()
	made := map[string]bool{"pastry-seed-key": true} // kubectl create secret generic pastry-seed-key --from-file=key=seed.key
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: not runAsNonRoot", who)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
		switch {
		case v.Secret != nil && m.secrets[v.Secret.SecretName] == nil && !made[v.Secret.SecretName]:
			t.Errorf("%s: volume %s: no Secret %s", who, v.Name, v.Secret.SecretName)
		case v.ConfigMap != nil:
			cm := m.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Errorf("%s: volume %s: no ConfigMap %s", who, v.Name, v.ConfigMap.Name)
				continue
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := cm.Data[it.Key]; !ok {
					t.Errorf("%s: volume %s: ConfigMap %s has no key %s", who, v.Name, cm.Name, it.Key)
				}
			}
		}
	}
	for _, c := range spec.Containers {
		if c.Image == "" || c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: no image, or a writable root file system", who, c.Name)
		}
		for _, vm := range c.VolumeMounts {
			if _, ok := vols[vm.Name]; !ok {
				t.Errorf("%s/%s: mount %s has no volume", who, c.Name, vm.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				if s := m.secrets[r.Name]; s == nil {
					t.Errorf("%s: env %s: no Secret %s", who, e.Name, r.Name)
				} else if _, ok := s.StringData[r.Key]; !ok {
					t.Errorf("%s: env %s: Secret %s has no key %s", who, e.Name, r.Name, r.Key)
				}
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				if cm := m.configMaps[r.Name]; cm == nil {
					t.Errorf("%s: env %s: no ConfigMap %s", who, e.Name, r.Name)
				} else if _, ok := cm.Data[r.Key]; !ok {
					t.Errorf("%s: env %s: ConfigMap %s has no key %s", who, e.Name, r.Name, r.Key)
				}
			}
		}
		// $(VAR) in args must name an env var of the container.
		for _, a := range c.Args {
			for _, mm := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
				found := false
				for _, e := range c.Env {
					found = found || e.Name == mm[1]
				}
				if !found {
					t.Errorf("%s/%s: arg %q names $(%s), which is not set", who, c.Name, a, mm[1])
				}
			}
		}
	}
}
