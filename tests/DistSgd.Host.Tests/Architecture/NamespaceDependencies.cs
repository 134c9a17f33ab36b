using System.Reflection;
using System.Reflection.Emit;

namespace DistSgd.Host.Tests.Architecture;

/// <summary>
/// Which namespace uses which, read from the compiled assemblies: every type a type names in its signatures (base type,
/// interfaces, fields, properties, events, method parameters and returns, generic arguments and constraints,
/// attributes, local variables) and every type, method or field its IL refers to (calls, object creations, field
/// accesses, casts, typeof). Compiler-made types (lambdas' closures, async and iterator state machines) count for the
/// type that declares them.
/// </summary>
/// <remarks>
/// Read from the binaries rather than the sources because the binaries say what the compiler resolved: a partially
/// qualified name (<c>Display.RunDisplay</c> inside <c>DistSgd.Host.Runs</c>), a <c>using</c> alias or a global using
/// cannot hide a dependency, and an unused <c>using</c> does not invent one. What the compiler inlines leaves no
/// reference and is not seen: a <c>const</c> or an enum member used only as a value, a default parameter value,
/// <c>nameof</c>, a doc comment's <c>cref</c>.
/// </remarks>
public static class NamespaceDependencies
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                                          BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>IL opcodes by their value (one- and two-byte forms), from the runtime's own table.</summary>
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>
    /// The namespaces of <paramref name="assemblies"/> that <paramref name="include"/> accepts, each with the others of
    /// them it uses (never itself).
    /// </summary>
    public static Dictionary<string, HashSet<string>> Of(IEnumerable<Assembly> assemblies, Func<string, bool> include)
    {
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var type in assemblies.SelectMany(a => a.GetTypes()))
        {
            string from = NamespaceOf(type);
            if (!include(from))
                continue;
            var uses = graph.TryGetValue(from, out var known) ? known : graph[from] = new HashSet<string>(StringComparer.Ordinal);
            foreach (var used in TypesUsedBy(type))
            {
                string to = NamespaceOf(used);
                if (to != from && include(to))
                    uses.Add(to);
            }
        }
        // A namespace only used, never using, is a node too.
        foreach (string used in graph.Values.SelectMany(v => v).ToList())
            graph.TryAdd(used, new HashSet<string>(StringComparer.Ordinal));
        return graph;
    }

    /// <summary>
    /// One cycle of <paramref name="graph"/> as the namespaces along it, the first repeated at the end
    /// (A → B → A), or null when the graph has none. Depth-first search in name order, so the answer is stable.
    /// </summary>
    public static IReadOnlyList<string>? FindCycle(IReadOnlyDictionary<string, HashSet<string>> graph)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        var path = new List<string>();
        var onPath = new HashSet<string>(StringComparer.Ordinal);

        IReadOnlyList<string>? Visit(string node)
        {
            if (onPath.Contains(node))
                return [.. path.Skip(path.IndexOf(node)), node];
            if (!done.Add(node))
                return null;
            path.Add(node);
            onPath.Add(node);
            foreach (string next in (graph.TryGetValue(node, out var edges) ? edges : []).Order(StringComparer.Ordinal))
            {
                if (Visit(next) is { } cycle)
                    return cycle;
            }
            path.RemoveAt(path.Count - 1);
            onPath.Remove(node);
            return null;
        }

        foreach (string node in graph.Keys.Order(StringComparer.Ordinal))
        {
            if (Visit(node) is { } cycle)
                return cycle;
        }
        return null;
    }

    /// <summary>The namespace a type belongs to: its own, or for a nested type its outermost declaring type's.</summary>
    private static string NamespaceOf(Type type)
    {
        while (type.HasElementType)
            type = type.GetElementType()!;
        while (type.DeclaringType is { } outer && !type.IsGenericParameter)
            type = outer;
        return type.Namespace ?? "";
    }

    private static IEnumerable<Type> TypesUsedBy(Type type)
    {
        var found = new List<Type>();
        void Add(Type? t)
        {
            if (t is null)
                return;
            if (t.HasElementType)
            {
                Add(t.GetElementType());
                return;
            }
            if (t.IsGenericParameter)
            {
                foreach (var constraint in t.GetGenericParameterConstraints())
                    Add(constraint);
                return;
            }
            found.Add(t);
            if (t.IsConstructedGenericType)
            {
                foreach (var argument in t.GetGenericArguments())
                    Add(argument);
            }
        }
        void AddAttributes(IEnumerable<CustomAttributeData> attributes)
        {
            foreach (var attribute in attributes)
                Add(attribute.AttributeType);
        }

        Add(type.BaseType);
        foreach (var implemented in type.GetInterfaces())
            Add(implemented);
        if (type.IsGenericTypeDefinition)
        {
            foreach (var parameter in type.GetGenericArguments())
                Add(parameter);
        }
        AddAttributes(type.CustomAttributes);
        foreach (var field in type.GetFields(Declared))
        {
            Add(field.FieldType);
            AddAttributes(field.CustomAttributes);
        }
        foreach (var property in type.GetProperties(Declared))
        {
            Add(property.PropertyType);
            AddAttributes(property.CustomAttributes);
        }
        foreach (var e in type.GetEvents(Declared))
            Add(e.EventHandlerType);
        var methods = type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared));
        foreach (var method in methods)
        {
            AddAttributes(method.CustomAttributes);
            if (method is MethodInfo info)
                Add(info.ReturnType);
            if (method.IsGenericMethodDefinition)
            {
                foreach (var parameter in method.GetGenericArguments())
                    Add(parameter);
            }
            foreach (var parameter in method.GetParameters())
                Add(parameter.ParameterType);
            foreach (var used in UsedByBody(type, method))
                Add(used);
        }
        return found;
    }

    /// <summary>The types of a method body's locals and of everything its IL refers to by token.</summary>
    private static IEnumerable<Type> UsedByBody(Type type, MethodBase method)
    {
        var body = method.GetMethodBody();
        if (body?.GetILAsByteArray() is not { } il)
            yield break;
        foreach (var local in body.LocalVariables)
            yield return local.LocalType;
        var typeArguments = type.IsGenericType ? type.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int at = 0; at < il.Length;)
        {
            short value = il[at] == 0xFE ? (short)(0xFE00 | il[at + 1]) : il[at];
            var opCode = OpCodesByValue[value];
            at += opCode.Size;
            switch (opCode.OperandType)
            {
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    var member = method.Module.ResolveMember(BitConverter.ToInt32(il, at), typeArguments, methodArguments);
                    switch (member)
                    {
                        case Type referenced:
                            yield return referenced;
                            break;
                        case FieldInfo field:
                            yield return field.DeclaringType!;
                            yield return field.FieldType;
                            break;
                        case MethodBase called:
                            yield return called.DeclaringType!;
                            if (called is MethodInfo calledInfo)
                            {
                                yield return calledInfo.ReturnType;
                                if (calledInfo.IsConstructedGenericMethod)
                                {
                                    foreach (var argument in calledInfo.GetGenericArguments())
                                        yield return argument;
                                }
                            }
                            break;
                    }
                    at += 4;
                    break;
                case OperandType.InlineSwitch:
                    at += 4 + 4 * BitConverter.ToInt32(il, at);
                    break;
                default:
                    at += OperandSize(opCode.OperandType);
                    break;
            }
        }
    }

    private static int OperandSize(OperandType operand) => operand switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        _ => 4,
    };
}
