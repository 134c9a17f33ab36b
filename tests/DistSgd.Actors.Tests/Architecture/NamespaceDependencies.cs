using System.Reflection;
using System.Reflection.Emit;

namespace DistSgd.Actors.Tests.Architecture;

/// <summary>
/// Which namespaces of an assembly use which, read from the compiled code: base types, interfaces, fields, signatures,
/// attributes' types, and every type, method and field a method body refers to (its IL tokens). Compiler-generated
/// types (closures, state machines) count for the namespace they are nested in.
/// </summary>
internal static class NamespaceDependencies
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    private const BindingFlags Everything = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                                            BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>Edges namespace → namespace used, both starting with <paramref name="root"/>, self-edges left out.</summary>
    public static IReadOnlySet<(string From, string To)> Of(Assembly assembly, string root)
    {
        var edges = new HashSet<(string, string)>();
        foreach (var type in assembly.GetTypes())
        {
            string from = NamespaceOf(type);
            if (!from.StartsWith(root, StringComparison.Ordinal))
                continue;
            foreach (var used in UsedBy(type))
            {
                string to = NamespaceOf(used);
                if (to != from && to.StartsWith(root, StringComparison.Ordinal) && used.Assembly == assembly)
                    edges.Add((from, to));
            }
        }
        return edges;
    }

    private static string NamespaceOf(Type type)
    {
        while (type.DeclaringType is { } outer)
            type = outer;
        return type.Namespace ?? "";
    }

    private static IEnumerable<Type> UsedBy(Type type)
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
            if (t.IsGenericType && !t.IsGenericTypeDefinition)
                foreach (var argument in t.GetGenericArguments())
                    Add(argument);
            if (!t.IsGenericParameter)
                found.Add(t.IsGenericType ? t.GetGenericTypeDefinition() : t);
        }
        Add(type.BaseType);
        foreach (var i in type.GetInterfaces())
            Add(i);
        foreach (var field in type.GetFields(Everything))
            Add(field.FieldType);
        foreach (var property in type.GetProperties(Everything))
            Add(property.PropertyType);
        foreach (var method in type.GetMethods(Everything).Cast<MethodBase>().Concat(type.GetConstructors(Everything)))
        {
            if (method is MethodInfo info)
                Add(info.ReturnType);
            foreach (var parameter in method.GetParameters())
                Add(parameter.ParameterType);
            foreach (var token in Tokens(method))
                Add(Resolve(method.Module, token, type, method));
        }
        return found;
    }

    /// <summary>The type a metadata token in <paramref name="method"/>'s body names, or declares the member it names.</summary>
    private static Type? Resolve(Module module, int token, Type type, MethodBase method)
    {
        var typeArguments = type.IsGenericType ? type.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        try
        {
            return module.ResolveMember(token, typeArguments, methodArguments) switch
            {
                Type t => t,
                FieldInfo f => f.DeclaringType is { } d && d.Module == module ? d : f.FieldType,
                MethodBase m => m.DeclaringType,
                _ => null,
            };
        }
        catch (ArgumentException)
        {
            return null;   // a string or signature token
        }
    }

    /// <summary>The metadata tokens of a method body: every operand of an instruction that takes a type, field or method.</summary>
    private static IEnumerable<int> Tokens(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
            yield break;
        int at = 0;
        while (at < il.Length)
        {
            short value = il[at] == 0xFE ? (short)(0xFE00 | il[at + 1]) : il[at];
            at += il[at] == 0xFE ? 2 : 1;
            var opCode = OpCodesByValue[value];
            switch (opCode.OperandType)
            {
                case OperandType.InlineType or OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineTok:
                    yield return BitConverter.ToInt32(il, at);
                    at += 4;
                    break;
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    at += 1;
                    break;
                case OperandType.InlineVar:
                    at += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    at += 8;
                    break;
                case OperandType.InlineSwitch:
                    at += 4 + 4 * BitConverter.ToInt32(il, at);
                    break;
                default:   // InlineBrTarget, InlineI, InlineSig, InlineString, ShortInlineR
                    at += 4;
                    break;
            }
        }
    }
}
