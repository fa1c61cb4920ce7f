// The CRD-only Kubernetes API server of hack/crd-apiserver.sh: upstream's apiextensions
// apiserver (the part of kube-apiserver that serves CustomResourceDefinitions and custom
// resources), run on its own for the tests of the TFJob CRD on a current Kubernetes.
//
// Inside kube-apiserver this server sits behind the aggregator, which serves discovery and
// the merged OpenAPI documents. Standing alone it needs two things the aggregator would give:
//   - root discovery (/api, /apis): its Complete step switches discovery off, so kubectl
//     would find no resources; switched back on below;
//   - the OpenAPI v2 document (/openapi/v2), which kubectl's client-side validation and
//     `kubectl explain` read: configured here as upstream's own test server does, next to the
//     v3 one its options already set.
// Everything else (flags, storage, authentication, CEL, pruning, defaulting) is upstream's.
package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	extensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/component-base/cli"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	cmd := &cobra.Command{
		Use:   "apiextensions-apiserver",
		Short: "A standalone Kubernetes API server for CustomResourceDefinitions (tfjob-operator's tests)",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return run(c.Context(), o)
		},
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags())
	os.Exit(cli.Run(cmd))
}

func run(ctx context.Context, o *options.CustomResourceDefinitionsServerOptions) error {
	config, err := o.Config()
	if err != nil {
		return err
	}
	definitions := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	namer := openapinamer.NewDefinitionNamer(extensionsapiserver.Scheme)
	config.GenericConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(definitions, namer)

	completed := config.Complete()
	completed.GenericConfig.EnableDiscovery = true
	server, err := completed.New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return err
	}
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}
