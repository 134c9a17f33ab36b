using Akka.Actor;

namespace DistSgd.Actors.Deployment;

/// <summary>A local actor that hands every message to a callback: the bridge from the actor world to the host process.</summary>
public sealed class CallbackActor : ReceiveActor
{
    public CallbackActor(Action<object> callback) => ReceiveAny(callback);

    public static Props Props(Action<object> callback) => Akka.Actor.Props.Create(() => new CallbackActor(callback));
}
