#!/usr/bin/env bash
# Deploy an image, pinned by its digest, to one environment (an overlay of deploy/k8s/overlays),
# wait for the rollout, smoke-test the new pods; on any failure roll the Deployment back and
# exit 1. The deploy jobs of CI run it; so can a person:
#
#   deploy/rollout.sh staging ghcr.io/your-org/customer-churn@sha256:<digest> [MODEL_VERSION]
#
# MODEL_VERSION: fail unless the service serves that model version. The last line printed on
# success is `model version: N`. Needs kubectl (pointed at the cluster: KUBECONFIG) and uv.
# ROLLOUT_TIMEOUT (default 300s) bounds the wait for the pods; SMOKE_PORT (default 18080) is
# the local port the smoke test reaches the Service through (kubectl port-forward).
set -euo pipefail

usage="usage: deploy/rollout.sh ENVIRONMENT IMAGE@sha256:DIGEST [MODEL_VERSION]"
environment=${1:?$usage}
image=${2:?$usage}
expected=${3:-}
timeout=${ROLLOUT_TIMEOUT:-300s}
port=${SMOKE_PORT:-18080}
deployment=customer-churn
here=$(cd "$(dirname "$0")" && pwd)
overlay=$here/k8s/overlays/$environment

fail() { echo "error: $*" >&2; exit 2; }
[[ -d $overlay ]] || fail "no overlay for '$environment' (deploy/k8s/overlays/$environment)"
[[ $image =~ ^[^@]+@sha256:[0-9a-f]{64}$ ]] || fail "the image must be pinned by digest (NAME@sha256:<64 hex>), got '$image'"

built=$(kubectl kustomize "$overlay")
namespace=$(sed -n 's/^  namespace: //p' <<<"$built" | head -n 1)
current=$(sed -n 's/^ *image: //p' <<<"$built" | head -n 1)
current=${current%@*}
[[ ${current##*/} == *:* ]] && current=${current%:*}  # drop the tag, not a registry's port

# The overlay as it is, with the image replaced by the pinned one: a layer of its own, so the
# overlay in the repository stays as committed.
layer=$(mktemp -d "$here/k8s/overlays/.pinned-XXXXXX")
forward=
cleanup() {
  [[ -n $forward ]] && kill "$forward" 2>/dev/null
  rm -rf "$layer"
}
trap cleanup EXIT
cat >"$layer/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../$environment
images:
  - name: $current
    newName: ${image%@*}
    digest: ${image#*@}
EOF

previous=$(kubectl -n "$namespace" get "deployment/$deployment" --ignore-not-found \
  -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}')

roll_back() {
  echo "rollout of $image to $environment failed: $*" >&2
  if [[ -z $previous ]]; then
    echo "nothing to roll back to: this was the first deployment to $environment" >&2
    exit 1
  fi
  kubectl -n "$namespace" rollout undo "deployment/$deployment"
  kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout="$timeout" \
    || echo "the rollback to revision $previous did not finish within $timeout either" >&2
  echo "rolled $environment back to revision $previous" >&2
  exit 1
}

echo "deploying $image to $environment (namespace $namespace)"
kubectl apply -k "$layer" || roll_back "kubectl apply was refused"
kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout="$timeout" \
  || roll_back "the new pods were not ready within $timeout"

kubectl -n "$namespace" port-forward "service/$deployment" "$port:80" >/dev/null &
forward=$!
smoke=(uv run --frozen --no-default-groups customer_churn smoke --url "http://127.0.0.1:$port")
[[ -n $expected ]] && smoke+=(--expect-version "$expected")
"${smoke[@]}" || roll_back "the smoke test failed"
