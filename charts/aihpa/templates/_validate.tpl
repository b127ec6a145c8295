{{/*
Checks across values that values.schema.json cannot express, and the ranges the aihpa CLI refuses at start: a release
that renders must start. The schema already rejects most single values; these checks repeat the ranges the controller
and the webhook enforce, so that `helm template --skip-schema-validation` cannot render a pod that crash-loops.
Every message names the value to change. Included once, by the controller Deployment (always rendered).
*/}}
{{- define "aihpa.validate" -}}
{{- $d := .Values.defaults }}
{{- $c := .Values.controller }}
{{- $w := .Values.webhook }}

{{- /* the policy defaults: the controller and the webhook refuse to start without 1 <= min <= max <= 2^31-1 */}}
{{- if lt (float64 $d.minReplicas) 1.0 }}
{{- fail (printf "defaults.minReplicas must be at least 1, got %v" $d.minReplicas) }}
{{- end }}
{{- if gt (float64 $d.minReplicas) (float64 $d.maxReplicas) }}
{{- fail (printf "defaults.minReplicas (%v) must not exceed defaults.maxReplicas (%v)" $d.minReplicas $d.maxReplicas) }}
{{- end }}
{{- if gt (float64 $d.maxReplicas) 2147483647.0 }}
{{- fail (printf "defaults.maxReplicas must be at most 2147483647, got %v" $d.maxReplicas) }}
{{- end }}
{{- if not (and (gt (float64 $d.targetUtilization) 0.0) (le (float64 $d.targetUtilization) 1.0)) }}
{{- fail (printf "defaults.targetUtilization must be in (0, 1] (a share of the CPU request), got %v" $d.targetUtilization) }}
{{- end }}
{{- $stabilization := $d.scaleDownStabilizationSeconds }}
{{- if and (not (kindIs "invalid" $stabilization)) (not (and (ge (float64 $stabilization) 0.0) (le (float64 $stabilization) 3600.0))) }}
{{- fail (printf "defaults.scaleDownStabilizationSeconds must be 0..3600 or null (the mode's own), got %v" $stabilization) }}
{{- end }}

{{- /* the controller */}}
{{- if not (and (gt (float64 $c.risk) 0.0) (le (float64 $c.risk) 0.5)) }}
{{- fail (printf "controller.risk must be in (0, 0.5] (the share of minutes a workload may be short of CPU), got %v" $c.risk) }}
{{- end }}
{{- if le (float64 $c.syncPeriodSeconds) 0.0 }}
{{- fail (printf "controller.syncPeriodSeconds must be positive, got %v" $c.syncPeriodSeconds) }}
{{- end }}
{{- if and (eq $c.metrics.source "prometheus") (not $c.metrics.prometheus.url) }}
{{- fail "controller.metrics.source=prometheus needs controller.metrics.prometheus.url" }}
{{- end }}
{{- if or (not (kindIs "float64" (float64 $c.shards))) (lt (float64 $c.shards) 1.0) (ne (float64 $c.shards) (float64 (int $c.shards))) }}
{{- fail (printf "controller.shards must be a whole number of at least 1 (1: one controller for all workloads), got %v" $c.shards) }}
{{- end }}
{{- if and (gt (int $c.shards) 1) (not $c.leaderElection) }}
{{- fail "controller.shards > 1 needs controller.leaderElection: each shard's replicas take turns on the shard's Lease" }}
{{- end }}
{{- if and (gt (int $c.replicas) 1) (not $c.leaderElection) }}
{{- fail "controller.replicas > 1 needs controller.leaderElection: two controllers without a lease would both scale" }}
{{- end }}
{{- if and $c.model.volume (not $c.model.path) }}
{{- fail "controller.model.volume needs controller.model.path: the directory to mount it at and load the model from" }}
{{- end }}
{{- with $c.model.path }}
{{- if not (hasPrefix "/" .) }}
{{- fail (printf "controller.model.path must be an absolute path in the container, got %q" .) }}
{{- end }}
{{- $taken := list "/tmp" }}
{{- if $c.history.enabled }}{{ $taken = append $taken "/var/lib/aihpa" }}{{ end }}
{{- if $c.model.lifecycle.enabled }}{{ $taken = append $taken "/var/lib/aihpa-models" }}{{ end }}
{{- if and $c.model.volume (has (trimSuffix "/" .) $taken) }}
{{- fail (printf "controller.model.path %q is already a mount of the controller (%s): choose another directory" . (join ", " $taken)) }}
{{- end }}
{{- end }}

{{- /* replicas, ports and disruption budgets of both components */}}
{{- range $name, $v := dict "controller" $c "webhook" $w }}
{{- if lt (float64 $v.replicas) 1.0 }}
{{- fail (printf "%s.replicas must be at least 1, got %v" $name $v.replicas) }}
{{- end }}
{{- if not (and (ge (float64 $v.port) 1.0) (le (float64 $v.port) 65535.0)) }}
{{- fail (printf "%s.port must be 1..65535, got %v" $name $v.port) }}
{{- end }}
{{- $pdb := $v.podDisruptionBudget }}
{{- if and $pdb.enabled (gt (int $v.replicas) 1) (or (eq $name "controller") $w.enabled) }}
{{- $min := toString $pdb.minAvailable }}
{{- if hasSuffix "%" $min }}
{{- if ge (atoi (trimSuffix "%" $min)) 100 }}
{{- fail (printf "%s.podDisruptionBudget.minAvailable %s lets no pod be evicted, so node drains never finish: use less than 100%%" $name $min) }}
{{- end }}
{{- else if not (regexMatch "^[0-9]+$" $min) }}
{{- fail (printf "%s.podDisruptionBudget.minAvailable must be a number of pods or a percentage like 50%%, got %q" $name $min) }}
{{- else if ge (atoi $min) (int $v.replicas) }}
{{- fail (printf "%s.podDisruptionBudget.minAvailable (%s) must be below %s.replicas (%v), or no pod could ever be evicted and node drains would never finish" $name $min $name $v.replicas) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* the webhook's certificates */}}
{{- if $w.enabled }}
{{- if and (eq .Values.certs.mode "helm") (gt (int .Values.certs.days) (int .Values.certs.caDays)) }}
{{- fail (printf "certs.days (%v) must not exceed certs.caDays (%v): the serving certificate would outlive the CA that signs it" .Values.certs.days .Values.certs.caDays) }}
{{- end }}
{{- if eq .Values.certs.mode "cert-manager" }}
{{- $cm := .Values.certs.certManager }}
{{- if ge (include "aihpa.durationSeconds" $cm.renewBefore | float64) (include "aihpa.durationSeconds" $cm.duration | float64) }}
{{- fail (printf "certs.certManager.renewBefore (%s) must be shorter than certs.certManager.duration (%s)" $cm.renewBefore $cm.duration) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* the image */}}
{{- if regexMatch "@|:[^/]*$" .Values.image.repository }}
{{- fail (printf "image.repository %q carries a tag or digest: give the repository alone and the tag in image.tag" .Values.image.repository) }}
{{- end }}
{{- end }}

{{/* Seconds in a Go duration such as 8760h, 1h30m or 90s (the syntax cert-manager takes). */}}
{{- define "aihpa.durationSeconds" -}}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|h|m|s)" (toString .) -1 }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 }}
{{- $unit := trimPrefix (regexFind "^[0-9]+(\\.[0-9]+)?" .) . }}
{{- $scale := get (dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001) $unit }}
{{- $total = addf $total (mulf $number $scale) }}
{{- end }}
{{- $total }}
{{- end }}
