using System.Runtime.InteropServices;
using DistSgd.Host.Export.Onnx;
using DistSgd.Numerics.Models;
using Google.Protobuf;

namespace DistSgd.Host.Export;

/// <summary>
/// A saved model as an ONNX graph (IR version <see cref="IrVersion"/>, opset <see cref="Opset"/>) that takes the raw
/// features, as the data files hold them, and gives what `distsgd predict` gives. The graph is the model's own
/// computation, step by step:
/// <code>
/// x ← features / pixel-max                 Div          (only when the run scaled pixels)
/// x ← (x − mean) / std                     Sub, Div     (only when the run standardised)
/// zₗ = aₗ₋₁·Wₗ + bₗ, aₗ = act(zₗ)          Gemm, Relu | Tanh | Sigmoid   (W: fan-in × fan-out, θ's own layout)
/// probabilities = softmax(z)               Softmax(axis 1)              (K ≥ 3 classes)
/// probabilities = [1 − σ(z), σ(z)]         Sigmoid, Sub, Concat          (2 classes, one logit)
/// label = argmax(probabilities)            ArgMax(axis 1, keepdims 0), int64
/// prediction = z                           (regression, N × 1)
/// </code>
/// Inputs and outputs have a symbolic batch dimension "batch". θ goes in as float32 initializers in raw little-endian
/// bytes, the same values the model file holds.
/// </summary>
public static class OnnxExport
{
    /// <summary>ONNX IR version 9 (ONNX 1.14): read by ONNX Runtime 1.15 and later.</summary>
    public const long IrVersion = 9;

    /// <summary>The default-domain operator set the graph binds to (ONNX 1.14).</summary>
    public const long Opset = 19;

    /// <summary>The graph's input: raw features, batch × input count, float32.</summary>
    public const string FeaturesName = "features";

    /// <summary>A classifier's output: class probabilities, batch × classes.</summary>
    public const string ProbabilitiesName = "probabilities";

    /// <summary>A classifier's output: the most probable class, batch, int64.</summary>
    public const string LabelName = "label";

    /// <summary>A regression's output: the predicted response, batch × 1.</summary>
    public const string PredictionName = "prediction";

    /// <summary>The ONNX model of <paramref name="model"/>.</summary>
    public static ModelProto Build(SavedModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var spec = model.Spec;
        var graph = new GraphProto
        {
            Name = "distsgd",
            DocString = $"{spec} trained by DistSgd; input: raw features; preprocessing: {Preprocessing(model)}",
        };
        graph.Input.Add(TensorValue(FeaturesName, TensorProto.Types.DataType.Float, spec.InputCount));

        string x = FeaturesName;
        var transform = model.Transform;
        if (transform.PixelMax != 1f)
        {
            graph.Initializer.Add(FloatTensor("pixel_max", [transform.PixelMax], []));
            x = Node(graph, "Div", "scaled", [x, "pixel_max"]);
        }
        if (transform.Standardizer is { } standardizer)
        {
            graph.Initializer.Add(FloatTensor("mean", standardizer.Mean, [standardizer.FeatureCount]));
            graph.Initializer.Add(FloatTensor("std", standardizer.Std, [standardizer.FeatureCount]));
            x = Node(graph, "Sub", "centred", [x, "mean"]);
            x = Node(graph, "Div", "standardised", [x, "std"]);
        }

        var layers = Model.LayersOf(spec);
        for (int l = 0; l < layers.Length; l++)
        {
            var layer = layers[l];
            string w = $"W{l}", b = $"b{l}";
            graph.Initializer.Add(FloatTensor(w, model.Parameters.AsSpan(layer.WeightOffset, layer.WeightCount), [layer.FanIn, layer.FanOut]));
            graph.Initializer.Add(FloatTensor(b, model.Parameters.AsSpan(layer.BiasOffset, layer.FanOut), [layer.FanOut]));
            bool last = l == layers.Length - 1;
            x = Node(graph, "Gemm", last && spec.Loss == LossKind.MeanSquaredError ? PredictionName : $"z{l}", [x, w, b]);
            if (!last)
                x = Node(graph, ActivationOp(spec.Activation), $"a{l}", [x]);
        }

        switch (spec.Loss)
        {
            case LossKind.MeanSquaredError:
                graph.Output.Add(TensorValue(PredictionName, TensorProto.Types.DataType.Float, 1));
                break;
            case LossKind.BinaryCrossEntropy:
            {
                // predict's o[1] = σ(z), o[0] = 1 − o[1].
                string p1 = Node(graph, "Sigmoid", "p1", [x]);
                graph.Initializer.Add(FloatTensor("one", [1f], []));
                string p0 = Node(graph, "Sub", "p0", ["one", p1]);
                Node(graph, "Concat", ProbabilitiesName, [p0, p1], IntAttribute("axis", 1));
                AddLabel(graph, spec.ClassCount);
                break;
            }
            default:
                Node(graph, "Softmax", ProbabilitiesName, [x], IntAttribute("axis", 1));
                AddLabel(graph, spec.ClassCount);
                break;
        }

        var onnx = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "distsgd",
            ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "",
            Domain = "distsgd",
            ModelVersion = 1,
            DocString = graph.DocString,
            Graph = graph,
        };
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        onnx.MetadataProps.Add(new StringStringEntryProto { Key = "distsgd.model", Value = spec.ToString() });
        onnx.MetadataProps.Add(new StringStringEntryProto { Key = "distsgd.preprocessing", Value = Preprocessing(model) });
        return onnx;
    }

    /// <summary>The preprocessing the graph holds, in words ("x / 255", "(x − mean) / std", "none").</summary>
    public static string Preprocessing(SavedModel model)
    {
        var parts = new List<string>();
        if (model.Transform.PixelMax != 1f)
            parts.Add(FormattableString.Invariant($"x / {model.Transform.PixelMax:G9}"));
        if (model.Transform.Standardizer is not null)
            parts.Add("(x − mean) / std of the training set");
        return parts.Count == 0 ? "none" : string.Join(", then ", parts);
    }

    /// <summary>The model's bytes as an ONNX file.</summary>
    public static byte[] Serialize(SavedModel model) => Build(model).ToByteArray();

    private static void AddLabel(GraphProto graph, int classCount)
    {
        Node(graph, "ArgMax", LabelName, [ProbabilitiesName], IntAttribute("axis", 1), IntAttribute("keepdims", 0));
        graph.Output.Add(TensorValue(ProbabilitiesName, TensorProto.Types.DataType.Float, classCount));
        graph.Output.Add(TensorValue(LabelName, TensorProto.Types.DataType.Int64, null));
    }

    private static string ActivationOp(Activation activation) => activation switch
    {
        Activation.Relu => "Relu",
        Activation.Tanh => "Tanh",
        Activation.Sigmoid => "Sigmoid",
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "no ONNX operator for this activation"),
    };

    /// <summary>Adds a node named after its one output and returns that output's name.</summary>
    private static string Node(GraphProto graph, string op, string output, string[] inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = output };
        node.Input.Add(inputs);
        node.Output.Add(output);
        node.Attribute.Add(attributes);
        graph.Node.Add(node);
        return output;
    }

    private static AttributeProto IntAttribute(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static TensorProto FloatTensor(string name, ReadOnlySpan<float> values, long[] dims)
    {
        var tensor = new TensorProto
        {
            Name = name,
            DataType = (int)TensorProto.Types.DataType.Float,
            // ONNX's raw_data is little-endian, as this machine's floats are (the model file assumes it too).
            RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values)),
        };
        tensor.Dims.Add(dims);
        return tensor;
    }

    /// <summary>A graph input or output: a tensor of batch × <paramref name="width"/> (batch only when null).</summary>
    private static ValueInfoProto TensorValue(string name, TensorProto.Types.DataType type, int? width)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        if (width is { } w)
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = w });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
